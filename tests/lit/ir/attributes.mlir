// RUN: lutc opt %s --split-input-file | filecheck %s

// Scalars, arrays, types, dense literals and non-finite floats.
// CHECK-LABEL: "func.func"
// CHECK: {a = 1.0e-05 : f32
// CHECK-SAME: b = 0x7F800000 : f32
// CHECK-SAME: c = [1 : i64, "two", true, tensor<2xf32>]
// CHECK-SAME: d = array<i64: 1, 0, 2>
// CHECK-SAME: e = dense<{{\[}}[1, 2], [3, 4]]> : tensor<2x2xi8>
// CHECK-SAME: f = dense<2.5> : tensor<4xf32>
// CHECK-SAME: g,
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  "func.return"(%x) : (tensor<4xf32>) -> ()
}) {sym_name = "attrs", function_type = (tensor<4xf32>) -> tensor<4xf32>, a = 0.00001 : f32, b = 0x7F800000 : f32, c = [1, "two", true, tensor<2xf32>], d = array<i64: 1, 0, 2>, e = dense<[[1, 2], [3, 4]]> : tensor<2x2xi8>, f = dense<[2.5, 2.5, 2.5, 2.5]> : tensor<4xf32>, g} : () -> ()

// -----

// Properties (MLIR's <{...}>) are read as attributes.
// CHECK-LABEL: "func.func"
// CHECK: "graph.transpose"(%{{.*}}) {perm = array<i64: 1, 0>}
"func.func"() ({
^bb0(%x: tensor<2x3xf32>):
  %0 = "graph.transpose"(%x) <{perm = array<i64: 1, 0>}> : (tensor<2x3xf32>) -> tensor<3x2xf32>
  "func.return"(%0) : (tensor<3x2xf32>) -> ()
}) {sym_name = "props", function_type = (tensor<2x3xf32>) -> tensor<3x2xf32>} : () -> ()

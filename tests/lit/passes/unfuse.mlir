// RUN: lutc opt %s -p unfuse --split-input-file | filecheck %s
// RUN: lutc opt %S/fuse_ops.mlir -p fuse-ops,unfuse --split-input-file > %t.roundtrip
// RUN: lutc opt %S/fuse_ops.mlir --split-input-file > %t.original
// RUN: diff %t.roundtrip %t.original

// The RUN lines above: fuse-ops then unfuse gives back exactly the input of fuse_ops.mlir.

// unfuse inlines the region: block arguments become the operands, results the yielded values.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x4xf32>, %[[W:.*]]: tensor<4x3xf32>):
// CHECK-NEXT: %[[M:.*]] = "graph.matmul"(%[[X]], %[[W]])
// CHECK-NEXT: %[[G:.*]] = "graph.gelu"(%[[M]])
// CHECK-NEXT: %[[N:.*]] = "graph.neg"(%[[G]])
// CHECK-NEXT: "func.return"(%[[N]], %[[M]])
// CHECK-NOT: graph.fused
"func.func"() ({
^bb0(%x: tensor<2x4xf32>, %w: tensor<4x3xf32>):
  %f:2 = "graph.fused"(%x, %w) ({
  ^bb0(%a: tensor<2x4xf32>, %b: tensor<4x3xf32>):
    %0 = "graph.matmul"(%a, %b) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %1 = "graph.gelu"(%0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    "graph.yield"(%1, %0) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
  }) {name = "fused_matmul_gelu"} : (tensor<2x4xf32>, tensor<4x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)
  %2 = "graph.neg"(%f#0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  "func.return"(%2, %f#1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
}) {sym_name = "unfuse", function_type = (tensor<2x4xf32>, tensor<4x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)} : () -> ()

// -----

// Nested groups are inlined too, outermost first.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<4xf32>):
// CHECK-NEXT: %[[E:.*]] = "graph.exp"(%[[X]])
// CHECK-NEXT: %[[R:.*]] = "graph.relu"(%[[E]])
// CHECK-NEXT: "func.return"(%[[R]])
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %f = "graph.fused"(%x) ({
  ^bb0(%a: tensor<4xf32>):
    %inner = "graph.fused"(%a) ({
    ^bb0(%b: tensor<4xf32>):
      %0 = "graph.exp"(%b) : (tensor<4xf32>) -> tensor<4xf32>
      "graph.yield"(%0) : (tensor<4xf32>) -> ()
    }) {name = "inner"} : (tensor<4xf32>) -> tensor<4xf32>
    %1 = "graph.relu"(%inner) : (tensor<4xf32>) -> tensor<4xf32>
    "graph.yield"(%1) : (tensor<4xf32>) -> ()
  }) {name = "outer"} : (tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%f) : (tensor<4xf32>) -> ()
}) {sym_name = "nested", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

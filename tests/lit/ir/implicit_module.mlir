// RUN: lutc opt %s | filecheck %s

// Top-level functions without a module are wrapped in one, as mlir-opt does.
// CHECK: "builtin.module"() ({
// CHECK-COUNT-2: "func.func"
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  "func.return"(%x) : (tensor<4xf32>) -> ()
}) {sym_name = "first", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  "func.return"(%x) : (tensor<4xf32>) -> ()
}) {sym_name = "second", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

// RUN: lutc opt %s -p dce --split-input-file | filecheck %s

// A dead chain disappears at once; live ops stay.
// CHECK-LABEL: "func.func"
// CHECK-NOT: "graph.exp"
// CHECK-NOT: "graph.tanh"
// CHECK: "graph.relu"
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %0 = "graph.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "graph.tanh"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "graph.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%2) : (tensor<4xf32>) -> ()
}) {sym_name = "chain", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

// -----

// Unused constants are dead too.
// CHECK-LABEL: "func.func"
// CHECK-NOT: "graph.constant"
// CHECK: "func.return"
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %c = "graph.constant"() {value = dense<3.0> : tensor<4xf32>} : () -> tensor<4xf32>
  "func.return"(%x) : (tensor<4xf32>) -> ()
}) {sym_name = "constant", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

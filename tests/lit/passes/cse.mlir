// RUN: lutc opt %s -p cse --split-input-file | filecheck %s

// Identical pure ops merge; the survivor feeds every former user.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<4xf32>):
// CHECK-NEXT: %[[E:.*]] = "graph.exp"(%[[X]])
// CHECK-NEXT: %[[S:.*]] = "graph.add"(%[[E]], %[[E]])
// CHECK-NEXT: "func.return"(%[[S]])
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %0 = "graph.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "graph.exp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "graph.add"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%2) : (tensor<4xf32>) -> ()
}) {sym_name = "same", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

// -----

// Different attributes or operands keep ops apart.
// CHECK-LABEL: "func.func"
// CHECK-COUNT-2: "graph.gelu"
// CHECK-COUNT-2: "graph.relu"
"func.func"() ({
^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
  %0 = "graph.gelu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "graph.gelu"(%x) {approximate = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "graph.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %3 = "graph.relu"(%y) : (tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%0, %1, %2, %3) : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> ()
}) {sym_name = "different", function_type = (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)} : () -> ()

// -----

// Equal constants merge too.
// CHECK-LABEL: "func.func"
// CHECK-COUNT-1: "graph.constant"
// CHECK-NOT: "graph.constant"
"func.func"() ({
^bb0(%x: tensor<2xf32>):
  %a = "graph.constant"() {value = dense<[1.0, 2.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  %b = "graph.constant"() {value = dense<[1.0, 2.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  %0 = "graph.add"(%x, %a) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %1 = "graph.mul"(%0, %b) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  "func.return"(%1) : (tensor<2xf32>) -> ()
}) {sym_name = "constants", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// RUN: lutc opt %s | filecheck %s
// RUN: lutc opt %s | lutc opt - | filecheck %s

// The generic form prints back with canonical value names and sorted attributes.
// CHECK: "builtin.module"() ({
// CHECK-NEXT:   "func.func"() ({
// CHECK-NEXT:   ^bb0(%[[A:.*]]: tensor<1x64xf32>, %[[B:.*]]: tensor<64x32xf32>):
// CHECK-NEXT:     %[[M:.*]] = "graph.matmul"(%[[A]], %[[B]]) : (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>
// CHECK-NEXT:     "func.return"(%[[M]]) : (tensor<1x32xf32>) -> ()
// CHECK-NEXT:   }) {function_type = (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>, sym_name = "main"} : () -> ()
// CHECK-NEXT: }) : () -> ()
"builtin.module"() ({
  "func.func"() ({
  ^bb0(%lhs: tensor<1x64xf32>, %rhs: tensor<64x32xf32>):
    %product = "graph.matmul"(%lhs, %rhs) : (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>
    "func.return"(%product) : (tensor<1x32xf32>) -> ()
  }) {sym_name = "main", function_type = (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>} : () -> ()
}) : () -> ()

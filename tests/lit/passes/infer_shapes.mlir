// RUN: lutc opt %s -p infer-shapes --split-input-file | filecheck %s
// RUN: lutc opt %s -p 'infer-shapes{input-shapes="x=5x8"}' --split-input-file | filecheck %s --check-prefix=BOUND

// Dynamic result dimensions are refined from static operands.
// CHECK-LABEL: "func.func"
// CHECK: "graph.matmul"{{.*}} -> tensor<?x4xf32>
// CHECK: "graph.relu"{{.*}} -> tensor<?x4xf32>
// CHECK: "graph.add"{{.*}} -> tensor<3x4xf32>
// BOUND-LABEL: "func.func"
// BOUND: ^bb0(%{{.*}}: tensor<5x8xf32>
// BOUND: "graph.relu"{{.*}} -> tensor<5x4xf32>
// BOUND: function_type = (tensor<5x8xf32>, tensor<8x4xf32>, tensor<3x4xf32>) -> (tensor<5x4xf32>, tensor<3x4xf32>)
"func.func"() ({
^bb0(%x: tensor<?x8xf32>, %w: tensor<8x4xf32>, %b: tensor<3x4xf32>):
  %0 = "graph.matmul"(%x, %w) : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  %1 = "graph.relu"(%0) : (tensor<?x4xf32>) -> tensor<?x4xf32>
  %2 = "graph.add"(%b, %b) : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<?x?xf32>
  "func.return"(%1, %2) : (tensor<?x4xf32>, tensor<?x?xf32>) -> ()
}) {sym_name = "main", arg_names = ["x", "w", "b"], function_type = (tensor<?x8xf32>, tensor<8x4xf32>, tensor<3x4xf32>) -> (tensor<?x4xf32>, tensor<?x?xf32>)} : () -> ()

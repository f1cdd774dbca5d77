// RUN: lutc opt %s -p fuse-ops --split-input-file | filecheck %s

// A matmul with a bias (broadcast) and gelu epilogue becomes one group; the block
// arguments are the group's inputs, constants included.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x4xf32>, %[[W:.*]]: tensor<4x3xf32>):
// CHECK: %[[B:.*]] = "graph.constant"
// CHECK: %[[F:.*]] = "graph.fused"(%[[X]], %[[W]], %[[B]]) ({
// CHECK-NEXT: ^bb0(%[[A0:.*]]: tensor<2x4xf32>, %[[A1:.*]]: tensor<4x3xf32>, %[[A2:.*]]: tensor<3xf32>):
// CHECK-NEXT: %[[M:.*]] = "graph.matmul"(%[[A0]], %[[A1]])
// CHECK-NEXT: %[[S:.*]] = "graph.add"(%[[M]], %[[A2]])
// CHECK-NEXT: %[[G:.*]] = "graph.gelu"(%[[S]])
// CHECK-NEXT: "graph.yield"(%[[G]])
// CHECK-NEXT: }) {name = "fused_matmul_add_gelu"}
// CHECK-NEXT: "func.return"(%[[F]])
"func.func"() ({
^bb0(%x: tensor<2x4xf32>, %w: tensor<4x3xf32>):
  %b = "graph.constant"() {value = dense<[0.5, -1.0, 2.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %0 = "graph.matmul"(%x, %w) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %1 = "graph.add"(%0, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = "graph.gelu"(%1) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  "func.return"(%2) : (tensor<2x3xf32>) -> ()
}) {sym_name = "matmul_add_gelu", function_type = (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>} : () -> ()

// -----

// Diamond: %1 reads %0 and %2 reads both. Putting %2 with %0 would make a cycle
// (group -> %1 -> group), so the add joins the second matmul as its epilogue instead;
// the first matmul stays alone (a group of one is not wrapped).
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<4x4xf32>, %[[W1:.*]]: tensor<4x4xf32>, %[[W2:.*]]: tensor<4x4xf32>):
// CHECK-NEXT: %[[M1:.*]] = "graph.matmul"(%[[X]], %[[W1]])
// CHECK-NEXT: %[[F:.*]] = "graph.fused"(%[[M1]], %[[W2]]) ({
// CHECK-NEXT: ^bb0(%[[A0:.*]]: tensor<4x4xf32>, %[[A1:.*]]: tensor<4x4xf32>):
// CHECK-NEXT: %[[M2:.*]] = "graph.matmul"(%[[A0]], %[[A1]])
// CHECK-NEXT: %[[S:.*]] = "graph.add"(%[[A0]], %[[M2]])
// CHECK-NEXT: "graph.yield"(%[[S]])
// CHECK-NEXT: }) {name = "fused_matmul_add"}
// CHECK-NEXT: "func.return"(%[[F]])
"func.func"() ({
^bb0(%x: tensor<4x4xf32>, %w1: tensor<4x4xf32>, %w2: tensor<4x4xf32>):
  %0 = "graph.matmul"(%x, %w1) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = "graph.matmul"(%0, %w2) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %2 = "graph.add"(%0, %1) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  "func.return"(%2) : (tensor<4x4xf32>) -> ()
}) {sym_name = "diamond", function_type = (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>} : () -> ()

// -----

// Diamond through an elementwise producer: exp feeds both a matmul and the add after it.
// The add may not join exp (exp -> matmul -> add would leave and re-enter the group).
// CHECK-LABEL: "func.func"
// CHECK: %[[E:.*]] = "graph.exp"
// CHECK-NEXT: %[[F:.*]] = "graph.fused"(%[[E]], %{{.*}}) ({
// CHECK: "graph.matmul"
// CHECK-NEXT: "graph.add"
// CHECK: }) {name = "fused_matmul_add"}
// CHECK-NEXT: "func.return"(%[[F]])
"func.func"() ({
^bb0(%x: tensor<4x4xf32>, %w: tensor<4x4xf32>):
  %0 = "graph.exp"(%x) : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = "graph.matmul"(%0, %w) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %2 = "graph.add"(%0, %1) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  "func.return"(%2) : (tensor<4x4xf32>) -> ()
}) {sym_name = "diamond_elementwise", function_type = (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>} : () -> ()

// -----

// A reduction ends its group: exp and the sum fuse, the relu after the sum does not.
// CHECK-LABEL: "func.func"
// CHECK: %[[F:.*]] = "graph.fused"(%{{.*}}) ({
// CHECK: "graph.exp"
// CHECK-NEXT: %[[R:.*]] = "graph.reduce_sum"
// CHECK-NEXT: "graph.yield"(%[[R]])
// CHECK-NEXT: }) {name = "fused_exp_reduce_sum"}
// CHECK-NEXT: %[[OUT:.*]] = "graph.relu"(%[[F]])
// CHECK-NEXT: "func.return"(%[[OUT]])
"func.func"() ({
^bb0(%x: tensor<4x8xf32>):
  %0 = "graph.exp"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = "graph.reduce_sum"(%0) {axes = array<i64: 1>, keepdims = true} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %2 = "graph.relu"(%1) : (tensor<4x1xf32>) -> tensor<4x1xf32>
  "func.return"(%2) : (tensor<4x1xf32>) -> ()
}) {sym_name = "reduction_boundary", function_type = (tensor<4x8xf32>) -> tensor<4x1xf32>} : () -> ()

// -----

// Injective ops fuse into their consumers (transpose -> relu), but not into a matmul,
// whose group only takes elementwise epilogues; softmax (a reduction) takes the injective
// reshape before it. Values used outside a group are yielded (the first group has two results).
// CHECK-LABEL: "func.func"
// CHECK: %[[T:.*]]:2 = "graph.fused"(%{{.*}}) ({
// CHECK: %[[TR:.*]] = "graph.transpose"
// CHECK-NEXT: %[[RELU:.*]] = "graph.relu"(%[[TR]])
// CHECK-NEXT: "graph.yield"(%[[TR]], %[[RELU]])
// CHECK-NEXT: }) {name = "fused_transpose_relu"}
// CHECK-NEXT: %[[M:.*]] = "graph.fused"(%[[T]]#0, %{{.*}}, %[[T]]#1) ({
// CHECK: "graph.matmul"
// CHECK-NEXT: "graph.add"
// CHECK: }) {name = "fused_matmul_add"}
// CHECK-NEXT: %[[S:.*]] = "graph.fused"(%[[M]]) ({
// CHECK: "graph.reshape"
// CHECK-NEXT: "graph.softmax"
// CHECK: }) {name = "fused_reshape_softmax"}
"func.func"() ({
^bb0(%x: tensor<4x8xf32>, %w: tensor<4x4xf32>):
  %0 = "graph.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  %1 = "graph.relu"(%0) : (tensor<8x4xf32>) -> tensor<8x4xf32>
  %2 = "graph.matmul"(%0, %w) : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  %3 = "graph.add"(%2, %1) : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
  %4 = "graph.reshape"(%3) {shape = array<i64: 4, 8>} : (tensor<8x4xf32>) -> tensor<4x8xf32>
  %5 = "graph.softmax"(%4) {axis = -1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  "func.return"(%5) : (tensor<4x8xf32>) -> ()
}) {sym_name = "injective", function_type = (tensor<4x8xf32>, tensor<4x4xf32>) -> tensor<4x8xf32>} : () -> ()

// RUN: lutc opt %s -p canonicalize --split-input-file | filecheck %s

// x + 0 and 0 + x fold to x; the zero constant dies.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x4xf32>):
// CHECK-NOT: graph.add
// CHECK-NOT: graph.constant
// CHECK: "func.return"(%[[X]])
"func.func"() ({
^bb0(%x: tensor<2x4xf32>):
  %zero = "graph.constant"() {value = dense<0.0> : tensor<2x4xf32>} : () -> tensor<2x4xf32>
  %0 = "graph.add"(%zero, %x) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %1 = "graph.add"(%0, %zero) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  "func.return"(%1) : (tensor<2x4xf32>) -> ()
}) {sym_name = "add_zero", function_type = (tensor<2x4xf32>) -> tensor<2x4xf32>} : () -> ()

// -----

// x * 1 folds, but not when the ones would broadcast x to a larger shape.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<4xf32>):
// CHECK: %[[ONES:.*]] = "graph.constant"
// CHECK: %[[B:.*]] = "graph.mul"(%[[X]], %[[ONES]]) : (tensor<4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
// CHECK: "func.return"(%[[B]], %[[X]])
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %ones = "graph.constant"() {value = dense<1.0> : tensor<3x4xf32>} : () -> tensor<3x4xf32>
  %one = "graph.constant"() {value = dense<1.0> : tensor<4xf32>} : () -> tensor<4xf32>
  %0 = "graph.mul"(%ones, %x) : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %1 = "graph.mul"(%x, %one) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%0, %1) : (tensor<3x4xf32>, tensor<4xf32>) -> ()
}) {sym_name = "mul_one", function_type = (tensor<4xf32>) -> (tensor<3x4xf32>, tensor<4xf32>)} : () -> ()

// -----

// transpose of transpose composes; the identity permutation disappears.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x3x4xf32>):
// CHECK-NEXT: %[[T:.*]] = "graph.transpose"(%[[X]]) {perm = array<i64: 2, 0, 1>}
// CHECK-NEXT: "func.return"(%[[T]], %[[X]])
"func.func"() ({
^bb0(%x: tensor<2x3x4xf32>):
  %0 = "graph.transpose"(%x) {perm = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %1 = "graph.transpose"(%0) {perm = array<i64: 2, 1, 0>} : (tensor<3x2x4xf32>) -> tensor<4x2x3xf32>
  %2 = "graph.transpose"(%x) {perm = array<i64: 1, 0, 2>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %3 = "graph.transpose"(%2) {perm = array<i64: 1, 0, 2>} : (tensor<3x2x4xf32>) -> tensor<2x3x4xf32>
  "func.return"(%1, %3) : (tensor<4x2x3xf32>, tensor<2x3x4xf32>) -> ()
}) {sym_name = "transposes", function_type = (tensor<2x3x4xf32>) -> (tensor<4x2x3xf32>, tensor<2x3x4xf32>)} : () -> ()

// -----

// reshape of reshape becomes one reshape; a reshape to the same type disappears.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x6xf32>):
// CHECK-NEXT: %[[R:.*]] = "graph.reshape"(%[[X]]) {shape = array<i64: 3, 4>}
// CHECK-NEXT: "func.return"(%[[R]], %[[X]])
"func.func"() ({
^bb0(%x: tensor<2x6xf32>):
  %0 = "graph.reshape"(%x) {shape = array<i64: 12>} : (tensor<2x6xf32>) -> tensor<12xf32>
  %1 = "graph.reshape"(%0) {shape = array<i64: 3, 4>} : (tensor<12xf32>) -> tensor<3x4xf32>
  %2 = "graph.reshape"(%x) {shape = array<i64: 2, 6>} : (tensor<2x6xf32>) -> tensor<2x6xf32>
  "func.return"(%1, %2) : (tensor<3x4xf32>, tensor<2x6xf32>) -> ()
}) {sym_name = "reshapes", function_type = (tensor<2x6xf32>) -> (tensor<3x4xf32>, tensor<2x6xf32>)} : () -> ()

// -----

// Constants move to the right of commutative ops; neg(neg(x)) is x.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<4xf32>):
// CHECK: %[[C:.*]] = "graph.constant"
// CHECK: "graph.mul"(%[[X]], %[[C]])
// CHECK-NOT: graph.neg
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %c = "graph.constant"() {value = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : () -> tensor<4xf32>
  %0 = "graph.mul"(%c, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = "graph.neg"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "graph.neg"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  "func.return"(%2) : (tensor<4xf32>) -> ()
}) {sym_name = "commute", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

// RUN: lutc opt %s -p fold-constants --split-input-file | filecheck %s
// RUN: lutc opt %s -p 'fold-constants{size-limit=2}' --split-input-file | filecheck %s --check-prefix=LIMIT

// A chain of ops over constants becomes one constant.
// CHECK-LABEL: "func.func"
// CHECK: %[[C:.*]] = "graph.constant"() {value = dense<[3.0, 5.0, 7.0]> : tensor<3xf32>}
// CHECK-NEXT: %[[R:.*]] = "graph.add"(%{{.*}}, %[[C]])
// LIMIT-LABEL: "func.func"
// LIMIT: "graph.mul"
"func.func"() ({
^bb0(%x: tensor<3xf32>):
  %a = "graph.constant"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %b = "graph.constant"() {value = dense<2.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %one = "graph.constant"() {value = dense<1.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %0 = "graph.mul"(%a, %b) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %s = "graph.add"(%0, %one) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %1 = "graph.add"(%x, %s) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  "func.return"(%1) : (tensor<3xf32>) -> ()
}) {sym_name = "chain", function_type = (tensor<3xf32>) -> tensor<3xf32>} : () -> ()

// -----

// Shape arithmetic on integer constants folds exactly (integer division truncates).
// CHECK-LABEL: "func.func"
// CHECK: "graph.constant"() {value = dense<[-3, 3]> : tensor<2xi64>}
// CHECK-NOT: "graph.div"
"func.func"() ({
^bb0(%x: tensor<2xi64>):
  %a = "graph.constant"() {value = dense<[-7, 7]> : tensor<2xi64>} : () -> tensor<2xi64>
  %b = "graph.constant"() {value = dense<2> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "graph.div"(%a, %b) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  %1 = "graph.add"(%x, %0) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  "func.return"(%1) : (tensor<2xi64>) -> ()
}) {sym_name = "integers", function_type = (tensor<2xi64>) -> tensor<2xi64>} : () -> ()

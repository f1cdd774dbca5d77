// RUN: lutc opt %s | filecheck %s
// RUN: lutc opt %s --elide-constants | filecheck %s --check-prefix=ELIDED

// Large constants live in the resource table; --elide-constants hides their bytes.
// CHECK: "graph.constant"() {value = dense_resource<weights> : tensor<2x3xf32>}
// CHECK: {-#
// CHECK-NEXT: dialect_resources: {
// CHECK-NEXT: builtin: {
// CHECK-NEXT: weights: "0x040000000000803F0000004000004040000080400000A0400000C040"
// ELIDED: dense_resource<__elided__> : tensor<2x3xf32>
// ELIDED-NOT: dialect_resources
"func.func"() ({
^bb0(%x: tensor<3x2xf32>):
  %w = "graph.constant"() {value = dense_resource<weights> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %0 = "graph.matmul"(%w, %x) : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>
  "func.return"(%0) : (tensor<2x2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<3x2xf32>) -> tensor<2x2xf32>} : () -> ()
{-#
  dialect_resources: {
    builtin: {
      weights: "0x040000000000803F0000004000004040000080400000A0400000C040"
    }
  }
#-}

// RUN: lutc opt %s -p cse | filecheck %s

// lut.table is pure: two identical tables of the same activations (say from two rewrites
// run separately) merge into one under cse, and both gemms read it.
// CHECK-LABEL: "func.func"
// CHECK: %[[T:.*]]:3 = "lut.table"
// CHECK-NOT: "lut.table"
// CHECK: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2,
// CHECK: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2,
"func.func"() ({
^bb0(%x: tensor<1x8xf32>, %p: tensor<2x4x2xui4>, %s: tensor<4x1xf32>, %s2: tensor<4x1xf32>):
  %t:3 = "lut.table"(%x) {g = 4 : i64, sum_group = 8 : i64} : (tensor<1x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
  %0 = "lut.gemm"(%t#0, %t#1, %t#2, %p, %s) {bits = 2 : i64, group_size = 8 : i64, sum_group = 8 : i64} : (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<2x4x2xui4>, tensor<4x1xf32>) -> tensor<1x4xf32>
  %u:3 = "lut.table"(%x) {g = 4 : i64, sum_group = 8 : i64} : (tensor<1x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
  %1 = "lut.gemm"(%u#0, %u#1, %u#2, %p, %s2) {bits = 2 : i64, group_size = 8 : i64, sum_group = 8 : i64} : (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>, tensor<2x4x2xui4>, tensor<4x1xf32>) -> tensor<1x4xf32>
  "func.return"(%0, %1) : (tensor<1x4xf32>, tensor<1x4xf32>) -> ()
}) {sym_name = "cse", function_type = (tensor<1x8xf32>, tensor<2x4x2xui4>, tensor<4x1xf32>, tensor<4x1xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)} : () -> ()

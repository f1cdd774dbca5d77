// RUN: lutc opt %s | filecheck %s

// The low-bit matmul normal form: 2-bit codes, groups of 32, per-group scales, default zero point.
// CHECK: "graph.mpgemm"(%{{.*}}, %{{.*}}, %{{.*}}) {bits = 2 : i64, group_size = 32 : i64} : (tensor<1x64xf32>, tensor<8x64xui2>, tensor<8x2xf32>) -> tensor<1x8xf32>
"func.func"() ({
^bb0(%x: tensor<1x64xf32>):
  %q = "graph.constant"() {value = dense<1> : tensor<8x64xui2>} : () -> tensor<8x64xui2>
  %s = "graph.constant"() {value = dense<0.5> : tensor<8x2xf32>} : () -> tensor<8x2xf32>
  %0 = "graph.mpgemm"(%x, %q, %s) {bits = 2 : i64, group_size = 32 : i64} : (tensor<1x64xf32>, tensor<8x64xui2>, tensor<8x2xf32>) -> tensor<1x8xf32>
  "func.return"(%0) : (tensor<1x8xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<1x64xf32>) -> tensor<1x8xf32>} : () -> ()

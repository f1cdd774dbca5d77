// RUN: lutc import %S/Inputs/blocked_dq_matmul.onnx --elide-constants | filecheck %s

// An int4 weight (N=8 x K=64) blocked along K (block_size 16), DequantizeLinear -> Transpose
// -> MatMul, becomes one graph.mpgemm: the signed codes are shifted by 8 into ui4, which
// makes the zero point the default (8), so no zeros operand is needed. Neither the
// dequantized float weight nor the transpose survives.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<2x64xf32>):
// CHECK-NEXT: %[[Q:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<8x64xui4>}
// CHECK-NEXT: %[[S:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<8x4xf32>}
// CHECK-NEXT: %[[Y:.*]] = "graph.mpgemm"(%[[X]], %[[Q]], %[[S]]) {bits = 4 : i64, group_size = 16 : i64, ternary = false} : (tensor<2x64xf32>, tensor<8x64xui4>, tensor<8x4xf32>) -> tensor<2x8xf32>
// CHECK-NEXT: "func.return"(%[[Y]])
// CHECK-NOT: graph.dequantize
// CHECK-NOT: graph.transpose
// CHECK-NOT: graph.matmul

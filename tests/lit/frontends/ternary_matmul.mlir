// RUN: lutc import %S/Inputs/ternary_matmul.onnx --elide-constants | filecheck %s

// A float MatMul weight whose columns are {-1, 0, +1} * scale is a ternary mpgemm:
// 2-bit codes {0, 1, 2} (zero point 1), one scale per output row, one group of all K.
// CHECK: ^bb0(%[[X:.*]]: tensor<1x32xf32>):
// CHECK-NEXT: %[[Q:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<4x32xui2>}
// CHECK-NEXT: %[[S:.*]] = "graph.constant"() {value = dense<{{.*}}> : tensor<4x1xf32>}
// CHECK-NEXT: "graph.mpgemm"(%[[X]], %[[Q]], %[[S]]) {bits = 2 : i64, group_size = 32 : i64, ternary = true}
// CHECK-NOT: graph.matmul

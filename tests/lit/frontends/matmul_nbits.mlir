// RUN: lutc import %S/Inputs/matmul_nbits.onnx --elide-constants | filecheck %s
// RUN: lutc import %S/Inputs/matmul_nbits.onnx | filecheck %s --check-prefix=NAMES
// RUN: lutc import %S/Inputs/matmul_nbits.onnx --elide-constants --print-debuginfo | filecheck %s --check-prefix=LOC

// com.microsoft.MatMulNBits (bits 4, K 64, N 16, block_size 32, packed zero points, bias)
// becomes one graph.mpgemm in the "NT" normal form: codes N x K (ui4), scales and zero
// points N x ceil(K/32); the bias follows as a graph.add.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<1x3x64xf32>):
// CHECK-NEXT: %[[Q:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<16x64xui4>}
// CHECK-NEXT: %[[S:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<16x2xf32>}
// CHECK-NEXT: %[[Z:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<16x2xui4>}
// CHECK-NEXT: %[[Y:.*]] = "graph.mpgemm"(%[[X]], %[[Q]], %[[S]], %[[Z]]) {bits = 4 : i64, group_size = 32 : i64, ternary = false} : (tensor<1x3x64xf32>, tensor<16x64xui4>, tensor<16x2xf32>, tensor<16x2xui4>) -> tensor<1x3x16xf32>
// CHECK-NEXT: %[[B:.*]] = "graph.constant"() {value = dense<{{.*}}> : tensor<16xf32>}
// CHECK-NEXT: %[[OUT:.*]] = "graph.add"(%[[Y]], %[[B]])
// CHECK-NEXT: "func.return"(%[[OUT]])
// CHECK: arg_names = ["x"]
// CHECK-SAME: result_names = ["y"]
// CHECK-NOT: graph.matmul

// The unpacked weights are resources named after the ONNX initializers.
// NAMES: dense_resource<proj.qweight_codes> : tensor<16x64xui4>
// NAMES: dense_resource<proj.qweight_scales> : tensor<16x2xf32>
// NAMES: dense_resource<proj.qweight_zeros> : tensor<16x2xui4>
// NAMES: dialect_resources
// NAMES: proj.qweight_codes: "0x01000000

// Locations name the ONNX node.
// LOC: "graph.mpgemm"{{.*}} loc("proj/MatMulNBits")
// LOC: "graph.add"{{.*}} loc("proj/MatMulNBits")

// RUN: lutc import %S/Inputs/conv_block.onnx --elide-constants --print-debuginfo | filecheck %s

// A MobileNet-like block. auto_pad=SAME_UPPER is resolved to explicit pads (9 -> 5 with
// stride 2 needs 2 pad rows: 1 before, 1 after); GlobalAveragePool is a reduce_mean over the
// spatial dims; Flatten a static reshape; Gemm(transB) a matmul with the weight transposed at
// import time (a constant named after the initializer) plus the bias.
// CHECK: ^bb0(%[[X:.*]]: tensor<1x4x9x9xf32>):
// CHECK: %[[W:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<8x2x3x3xf32>} : () -> tensor<8x2x3x3xf32> loc("conv.weight")
// CHECK-NEXT: %[[C:.*]] = "graph.conv2d"(%[[X]], %[[W]]) {dilations = array<i64: 1, 1>, groups = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x4x9x9xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x5x5xf32> loc("conv")
// CHECK: %[[B:.*]] = "graph.batch_norm"(%[[C]], {{.*}}) {epsilon = 0.001 : f32} {{.*}} loc("bn")
// CHECK-NEXT: %[[R:.*]] = "graph.relu"(%[[B]])
// CHECK-NEXT: %[[P:.*]] = "graph.reduce_mean"(%[[R]]) {axes = array<i64: 2, 3>, keepdims = true} : (tensor<1x8x5x5xf32>) -> tensor<1x8x1x1xf32> loc("pool")
// CHECK-NEXT: %[[F:.*]] = "graph.reshape"(%[[P]]) {shape = array<i64: 1, 8>}
// CHECK-NEXT: %[[FW:.*]] = "graph.constant"() {value = dense_resource<__elided__> : tensor<8x10xf32>}
// CHECK-NEXT: %[[M:.*]] = "graph.matmul"(%[[F]], %[[FW]]) : (tensor<1x8xf32>, tensor<8x10xf32>) -> tensor<1x10xf32> loc("fc")
// CHECK-NEXT: %[[FB:.*]] = "graph.constant"()
// CHECK-NEXT: %[[Y:.*]] = "graph.add"(%[[M]], %[[FB]])
// CHECK-NEXT: "func.return"(%[[Y]])
// CHECK-NOT: graph.transpose

// RUN: lutc import %S/Inputs/conv_block.onnx | filecheck %s

// Large constants are resources named after their initializers, also when folded at import
// time (the transposed Gemm weight keeps "fc.weight").
// CHECK: dense_resource<conv.weight> : tensor<8x2x3x3xf32>
// CHECK: dense_resource<fc.weight> : tensor<8x10xf32>
// CHECK: dialect_resources
// CHECK-DAG: conv.weight: "0x04000000
// CHECK-DAG: fc.weight: "0x04000000

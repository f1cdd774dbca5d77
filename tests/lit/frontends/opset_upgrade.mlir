// RUN: lutc import %S/Inputs/opset11_reduce.onnx | filecheck %s

// An opset-11 model is upgraded to opset 13 before import: ReduceSum's `axes` attribute
// becomes a constant input, folded back into the static `axes` of graph.reduce_sum.
// CHECK: ^bb0(%[[X:.*]]: tensor<2x3x4xf32>):
// CHECK-NEXT: %[[S:.*]] = "graph.reduce_sum"(%[[X]]) {axes = array<i64: 1>, keepdims = false} : (tensor<2x3x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: %[[Y:.*]] = "graph.softmax"(%[[S]]) {axis = -1 : i64}
// CHECK-NEXT: "func.return"(%[[Y]])

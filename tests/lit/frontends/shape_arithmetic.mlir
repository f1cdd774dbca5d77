// RUN: lutc import %S/Inputs/shape_arithmetic.onnx | filecheck %s

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds at import time into one static
// reshape; the dynamic batch dimension (ONNX symbol "batch", copied from the input) is the -1.
// CHECK: ^bb0(%[[X:.*]]: tensor<?x3x4xf32>):
// CHECK-NEXT: %[[Y:.*]] = "graph.reshape"(%[[X]]) {shape = array<i64: -1, 12>} : (tensor<?x3x4xf32>) -> tensor<?x12xf32>
// CHECK-NEXT: "func.return"(%[[Y]])
// CHECK-NOT: graph.shape
// CHECK-NOT: graph.concat

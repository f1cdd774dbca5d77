// RUN: lutc opt %s --print-debuginfo | filecheck %s

// Locations survive a round trip when printed; result groups keep their #index uses.
// CHECK: %[[P:.*]] = "graph.relu"(%{{.*}}) : (tensor<4xf32>) -> tensor<4xf32> loc("node_relu")
// CHECK: "func.return"(%[[P]]) : (tensor<4xf32>) -> () loc("model.onnx":3:7)
"func.func"() ({
^bb0(%x: tensor<4xf32>):
  %0 = "graph.relu"(%x) : (tensor<4xf32>) -> tensor<4xf32> loc("node_relu")
  "func.return"(%0) : (tensor<4xf32>) -> () loc("model.onnx":3:7)
}) {sym_name = "main", function_type = (tensor<4xf32>) -> tensor<4xf32>} : () -> ()

// RUN: lutc import %S/Inputs/group_norm.onnx --print-debuginfo | filecheck %s

// GroupNormalization has no converter: the importer expands the function body ONNX's schema
// defines, and locates each of its ops as "<node name>/<op>".
// CHECK: ^bb0(%[[X:.*]]: tensor<2x6x5xf32>):
// CHECK: "graph.reshape"(%[[X]]) {shape = array<i64: 2, 3, 2, 5>} {{.*}} loc("gn/Reshape")
// CHECK: "graph.reduce_mean"({{.*}}) {axes = array<i64: 2>, keepdims = true} {{.*}} loc("gn/ReduceMean")
// CHECK: "graph.sqrt"{{.*}} loc("gn/Sqrt")
// CHECK: "graph.div"{{.*}} loc("gn/Div")
// CHECK: "graph.reshape"({{.*}}) {shape = array<i64: 2, 6, 5>}
// CHECK: %[[Y:.*]] = "graph.add"({{.*}}) : (tensor<2x6x5xf32>, tensor<1x6x1xf32>) -> tensor<2x6x5xf32> loc("gn/Add")
// CHECK-NEXT: "func.return"(%[[Y]])
// CHECK-NOT: GroupNormalization

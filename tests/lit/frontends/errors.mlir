// Bad models: one line naming the file, the node (name and op type) and the cause; nothing on
// stdout (the last RUN checks that stdout stays empty).
// RUN: not lutc import %S/Inputs/bad_unsupported_ops.onnx 2>&1 | filecheck %s --check-prefix=OPS
// RUN: not lutc import %S/Inputs/bad_cycle.onnx 2>&1 | filecheck %s --check-prefix=CYCLE
// RUN: not lutc import %S/Inputs/bad_missing_initializer.onnx 2>&1 | filecheck %s --check-prefix=MISSING
// RUN: not lutc import %S/Inputs/bad_dtype.onnx 2>&1 | filecheck %s --check-prefix=DTYPE
// RUN: not lutc import %S/Inputs/bad_external_data.onnx 2>&1 | filecheck %s --check-prefix=EXTERNAL
// RUN: not lutc import %S/Inputs/bad_cycle.onnx 2>/dev/null | filecheck %s --check-prefix=STDOUT --allow-empty

// OPS: bad_unsupported_ops.onnx: error: unsupported ONNX operators: custom.Foo (nodes 'foo0', 'foo1'); Loop (node 'loop0')
// OPS-NOT: Traceback
// CYCLE: bad_cycle.onnx: error: the graph has a cycle: Add node 'add0' -> Relu node 'relu0' -> Add node 'add0'
// MISSING: bad_missing_initializer.onnx: error: MatMul node 'fc': input #1 'fc.weight' is not defined
// DTYPE: bad_dtype.onnx: error: Add node 'add_mixed': 'graph.add' op operands must have the same element type, got f32, i64
// EXTERNAL: bad_external_data.onnx: error: initializer 'W': external data path '../weights.bin' leaves the model's folder
// STDOUT-NOT: {{.}}

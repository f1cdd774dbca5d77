// RUN: not lutc opt %s 2>&1 | filecheck %s

// A bad input gives one line naming file:line:col and the cause, then the line and a caret.
// CHECK: error_output.mlir:8:8: error: expected an operation name in quotes (generic syntax), found 'graph.relu(%x)'
// CHECK-NEXT: {{^}}  %0 = graph.relu(%x)
// CHECK-NEXT: {{^}}       ^
// CHECK-NOT: Traceback
  %0 = graph.relu(%x)

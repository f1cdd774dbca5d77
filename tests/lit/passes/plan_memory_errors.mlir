// RUN: not lutc opt %s -p 'plan-memory{capacity=1024}' 2>&1 | filecheck %s
// RUN: not lutc opt %s -p 'plan-memory{capacity=640}' 2>&1 | filecheck %s --check-prefix=OP
// RUN: not lutc opt %s -p 'plan-memory{capacity=1000,alignment=64}' 2>&1 | filecheck %s --check-prefix=OPT

// Each tensor fits 640 bytes but the add's two operands and its result (768 bytes) do not.
// OP: plan_memory_errors.mlir:[[# @LINE + 8]]:{{[0-9]+}}: error: plan-memory: graph.add needs 768 bytes resident at once (operands + results), more than the scratchpad capacity 640
// A 2048-byte weight cannot fit a 1 KiB scratchpad: the error names the tensor, its size and the capacity.
// CHECK: error: plan-memory: tensor argument #1 needs 2048 bytes (2048 + alignment), more than the scratchpad capacity 1024
// OPT: error: plan-memory: capacity 1000 must be a positive multiple of the alignment 64
"func.func"() ({
^bb0(%x: tensor<4x16xf32>):
  %a = "graph.exp"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %b = "graph.tanh"(%a) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %s = "graph.add"(%a, %b) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  "func.return"(%s) : (tensor<4x16xf32>) -> ()
}) {sym_name = "footprint", function_type = (tensor<4x16xf32>) -> tensor<4x16xf32>} : () -> ()
"func.func"() ({
^bb0(%x: tensor<4x16xf32>, %w: tensor<16x32xf32>):
  %m = "graph.matmul"(%x, %w) : (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>
  "func.return"(%m) : (tensor<4x32xf32>) -> ()
}) {sym_name = "too_large", function_type = (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>} : () -> ()

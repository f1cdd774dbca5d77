// RUN: lutc opt %s -p fuse-ops | filecheck %s --check-prefix=DEFAULT
// RUN: lutc opt %s -p 'fuse-ops{deny="reduction"}' | filecheck %s --check-prefix=DENY
// RUN: lutc opt %s -p 'fuse-ops{max-ops=2}' | filecheck %s --check-prefix=MAX
// RUN: lutc opt %s -p 'fuse-ops{allow=elementwise+broadcast}' | filecheck %s --check-prefix=ALLOW
// RUN: not lutc opt %s -p 'fuse-ops{deny=reductions}' 2>&1 | filecheck %s --check-prefix=BAD

// DEFAULT: {name = "fused_exp_mul_reduce_sum"}
// DEFAULT: {name = "fused_matmul_add_relu"}

// A denied kind never fuses: the sum stays alone, the elementwise ops before it still fuse.
// DENY: {name = "fused_exp_mul"}
// DENY-NEXT: "graph.reduce_sum"
// DENY: {name = "fused_matmul_add_relu"}

// MAX: {name = "fused_exp_mul"}
// MAX-NEXT: "graph.reduce_sum"
// MAX: {name = "fused_matmul_add"}
// MAX-NEXT: "graph.relu"

// Only elementwise and broadcast ops fuse: the matmul loses its epilogue.
// ALLOW: {name = "fused_exp_mul"}
// ALLOW-NEXT: "graph.reduce_sum"
// ALLOW-NEXT: "graph.matmul"
// ALLOW-NEXT: "graph.fused"
// ALLOW: {name = "fused_add_relu"}

// BAD: error: fuse-ops: unknown kind 'reductions' in deny (kinds: elementwise, broadcast, injective, reduction, out-elementwise-fusable, lut-precompute, opaque)
"func.func"() ({
^bb0(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>):
  %half = "graph.constant"() {value = dense<0.5> : tensor<8xf32>} : () -> tensor<8xf32>
  %0 = "graph.exp"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = "graph.mul"(%0, %half) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %2 = "graph.reduce_sum"(%1) {axes = array<i64: 1>, keepdims = true} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %3 = "graph.matmul"(%x, %w) : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %4 = "graph.add"(%3, %2) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %5 = "graph.relu"(%4) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  "func.return"(%5) : (tensor<4x8xf32>) -> ()
}) {sym_name = "options", function_type = (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>} : () -> ()

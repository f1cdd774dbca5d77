// RUN: lutc opt %s -p 'lut-rewrite{policy=always}' --split-input-file | filecheck %s
// RUN: lutc opt %s -p 'lut-rewrite{policy=always},fuse-ops' --split-input-file | filecheck %s --check-prefix=FUSED

// Q/K/V projections read the same normalized activations: one lut.table feeds all three,
// right after the rms_norm. Its sums are per gcd(8, 16, 16) = 8 k, which every reader can use.
// CHECK-LABEL: "func.func"
// CHECK: %[[N:.*]] = "graph.rms_norm"
// CHECK-NEXT: %[[T:.*]]:3 = "lut.table"(%[[N]]) {{{.*}}sum_group = 8 : i64{{.*}}}
// CHECK-NOT: "lut.table"
// CHECK: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %{{.*}}) {{{.*}}group_size = 8 : i64{{.*}}sum_group = 8 : i64
// CHECK: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %{{.*}}) {{{.*}}group_size = 16 : i64{{.*}}sum_group = 8 : i64
// CHECK: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %{{.*}}) {{{.*}}group_size = 16 : i64{{.*}}sum_group = 8 : i64
// CHECK-NOT: "lut.table"

// Precompute fusion: the table is built in the rms_norm's group, and yielded to the three gemms.
// FUSED-LABEL: "func.func"
// FUSED: %[[F:.*]]:3 = "graph.fused"(%{{.*}}, %{{.*}}) ({
// FUSED: "graph.rms_norm"
// FUSED-NEXT: "lut.table"
// FUSED-NEXT: "graph.yield"
// FUSED-NEXT: }) {name = "fused_rms_norm_lut_table"}
// FUSED: "lut.gemm"(%[[F]]#0, %[[F]]#1, %[[F]]#2,
// FUSED: "lut.gemm"(%[[F]]#0, %[[F]]#1, %[[F]]#2,
// FUSED: "lut.gemm"(%[[F]]#0, %[[F]]#1, %[[F]]#2,
"func.func"() ({
^bb0(%x: tensor<1x16xf32>, %nw: tensor<16xf32>, %cq: tensor<16x16xui2>, %sq: tensor<16x2xf32>, %ck: tensor<8x16xui2>, %sk: tensor<8x1xf32>, %cv: tensor<8x16xui2>, %sv: tensor<8x1xf32>):
  %n = "graph.rms_norm"(%x, %nw) {axis = -1 : i64, epsilon = 1.0e-05 : f32} : (tensor<1x16xf32>, tensor<16xf32>) -> tensor<1x16xf32>
  %q = "graph.mpgemm"(%n, %cq, %sq) {bits = 2 : i64, group_size = 8 : i64} : (tensor<1x16xf32>, tensor<16x16xui2>, tensor<16x2xf32>) -> tensor<1x16xf32>
  %k = "graph.mpgemm"(%n, %ck, %sk) {bits = 2 : i64, group_size = 16 : i64} : (tensor<1x16xf32>, tensor<8x16xui2>, tensor<8x1xf32>) -> tensor<1x8xf32>
  %v = "graph.mpgemm"(%n, %cv, %sv) {bits = 2 : i64, group_size = 16 : i64} : (tensor<1x16xf32>, tensor<8x16xui2>, tensor<8x1xf32>) -> tensor<1x8xf32>
  "func.return"(%q, %k, %v) : (tensor<1x16xf32>, tensor<1x8xf32>, tensor<1x8xf32>) -> ()
}) {sym_name = "qkv", function_type = (tensor<1x16xf32>, tensor<16xf32>, tensor<16x16xui2>, tensor<16x2xf32>, tensor<8x16xui2>, tensor<8x1xf32>, tensor<8x16xui2>, tensor<8x1xf32>) -> (tensor<1x16xf32>, tensor<1x8xf32>, tensor<1x8xf32>)} : () -> ()

// -----

// A gated FFN: gate and up share the table of %n; the down projection's table is built in
// the group of the gate's gemm, after silu(gate) * up, where the activations are produced.
// CHECK-LABEL: "func.func"
// CHECK: %[[T:.*]]:3 = "lut.table"(%arg0)
// CHECK: %[[G:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2,
// CHECK: %[[U:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2,
// CHECK: %[[A:.*]] = "graph.silu"(%[[G]])
// CHECK-NEXT: %[[H:.*]] = "graph.mul"(%[[A]], %[[U]])
// CHECK-NEXT: %[[T2:.*]]:3 = "lut.table"(%[[H]])
// CHECK: "lut.gemm"(%[[T2]]#0, %[[T2]]#1, %[[T2]]#2,
// FUSED-LABEL: "func.func"
// FUSED: ^bb0(%[[X:[a-z0-9]+]]:
// FUSED-NEXT: %[[T:.*]]:3 = "lut.table"(%[[X]])
// FUSED: %[[U:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2,
// FUSED: %[[H:.*]]:3 = "graph.fused"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %{{.*}}, %{{.*}}, %[[U]]) ({
// FUSED: "lut.gemm"
// FUSED-NEXT: "graph.silu"
// FUSED-NEXT: "graph.mul"
// FUSED-NEXT: "lut.table"
// FUSED-NEXT: "graph.yield"
// FUSED-NEXT: }) {name = "fused_lut_gemm_silu_mul_lut_table"}
// FUSED: "lut.gemm"(%[[H]]#0, %[[H]]#1, %[[H]]#2,
"func.func"() ({
^bb0(%x: tensor<1x16xf32>, %cg: tensor<32x16xui2>, %cu: tensor<32x16xui2>, %cd: tensor<16x32xui2>, %s16: tensor<32x1xf32>, %s32: tensor<16x1xf32>):
  %g = "graph.mpgemm"(%x, %cg, %s16) {bits = 2 : i64, group_size = 16 : i64} : (tensor<1x16xf32>, tensor<32x16xui2>, tensor<32x1xf32>) -> tensor<1x32xf32>
  %u = "graph.mpgemm"(%x, %cu, %s16) {bits = 2 : i64, group_size = 16 : i64} : (tensor<1x16xf32>, tensor<32x16xui2>, tensor<32x1xf32>) -> tensor<1x32xf32>
  %a = "graph.silu"(%g) : (tensor<1x32xf32>) -> tensor<1x32xf32>
  %h = "graph.mul"(%a, %u) : (tensor<1x32xf32>, tensor<1x32xf32>) -> tensor<1x32xf32>
  %d = "graph.mpgemm"(%h, %cd, %s32) {bits = 2 : i64, group_size = 32 : i64} : (tensor<1x32xf32>, tensor<16x32xui2>, tensor<16x1xf32>) -> tensor<1x16xf32>
  "func.return"(%d) : (tensor<1x16xf32>) -> ()
}) {sym_name = "ffn", function_type = (tensor<1x16xf32>, tensor<32x16xui2>, tensor<32x16xui2>, tensor<16x32xui2>, tensor<32x1xf32>, tensor<16x1xf32>) -> tensor<1x16xf32>} : () -> ()

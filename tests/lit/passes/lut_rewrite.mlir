// RUN: lutc opt %s -p 'lut-rewrite{policy=always}' --split-input-file | filecheck %s
// RUN: lutc opt %s -p 'lut-rewrite{policy=always,symmetric=false}' --split-input-file | filecheck %s --check-prefix=PLAIN
// RUN: lutc opt %s -p 'lut-rewrite{policy=always,base3=true}' --split-input-file | filecheck %s --check-prefix=BASE3
// RUN: lutc opt %s -p 'lut-rewrite{policy=always,table-dtype=i8,act-group=4}' --split-input-file | filecheck %s --check-prefix=INT8
// RUN: lutc opt %s -p 'lut-rewrite{policy=never}' --split-input-file | filecheck %s --check-prefix=NEVER

// 2-bit weights. Row 0 has codes [0 1 2 3 | 3 2 1 0]: bit plane 0 is [0 1 0 1 | 1 0 1 0], so its
// table indices (sum_t 2^t bit_t) are 10 and 5; plane 1 gives 12 and 3. Symmetric tables keep 8
// of 16 entries: an index >= 8 is stored as sign (8) | its mirror 15 - idx, so 10 -> 13, 12 -> 11.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:.*]]: tensor<1x8xf32>):
// CHECK-NEXT: %[[T:.*]]:3 = "lut.table"(%[[X]]) {act_group = 0 : i64, base3 = false, g = 4 : i64, sum_group = 8 : i64, symmetric = true, table_type = f32} : (tensor<1x8xf32>) -> (tensor<1x2x8xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
// CHECK-NEXT: %[[S:.*]] = "graph.constant"() {value = dense<{{\[\[}}0.5], [0.25]]>
// CHECK-NEXT: %[[P:.*]] = "graph.constant"() {value = dense<{{\[\[\[}}13, 5], [8, 15]], {{\[\[}}11, 3], [0, 11]]]> : tensor<2x2x2xui4>}
// CHECK-NEXT: %[[Y:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %[[P]], %[[S]]) {act_group = 0 : i64, base3 = false, bits = 2 : i64, dequant_cycles = {{[0-9]+}} : i64, g = 4 : i64, group_size = 8 : i64, lut_cycles = {{[0-9]+}} : i64, lut_decision = "lut", sum_group = 8 : i64, symmetric = true, ternary = false}
// CHECK-NEXT: "func.return"(%[[Y]])
// PLAIN-LABEL: "func.func"
// PLAIN: "lut.table"(%{{.*}}) {{.*}}symmetric = false{{.*}} -> (tensor<1x2x16xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
// PLAIN: dense<{{\[\[\[}}10, 5], [15, 8]], {{\[\[}}12, 3], [0, 12]]]> : tensor<2x2x2xui4>
// INT8-LABEL: "func.func"
// INT8: "lut.table"(%{{.*}}) {act_group = 4 : i64, {{.*}}table_type = i8} : (tensor<1x8xf32>) -> (tensor<1x2x8xi8>, tensor<1x2xf32>, tensor<1x1xf32>)
// INT8: "lut.gemm"{{.*}}act_group = 4 : i64
// base3=true only changes ternary weights.
// BASE3-LABEL: "func.func"
// BASE3: "lut.table"{{.*}}base3 = false
// NEVER-LABEL: "func.func"
// NEVER-NOT: lut.
// NEVER: "graph.mpgemm"({{.*}}) {bits = 2 : i64, dequant_cycles = {{[0-9]+}} : i64, group_size = 8 : i64, lut_cycles = {{[0-9]+}} : i64, lut_decision = "dequantize"}
"func.func"() ({
^bb0(%x: tensor<1x8xf32>):
  %q = "graph.constant"() {value = dense<[[0, 1, 2, 3, 3, 2, 1, 0], [1, 1, 1, 1, 0, 0, 2, 3]]> : tensor<2x8xui2>} : () -> tensor<2x8xui2>
  %s = "graph.constant"() {value = dense<[[0.5], [0.25]]> : tensor<2x1xf32>} : () -> tensor<2x1xf32>
  %0 = "graph.mpgemm"(%x, %q, %s) {bits = 2 : i64, group_size = 8 : i64} : (tensor<1x8xf32>, tensor<2x8xui2>, tensor<2x1xf32>) -> tensor<1x2xf32>
  "func.return"(%0) : (tensor<1x2xf32>) -> ()
}) {sym_name = "two_bit", function_type = (tensor<1x8xf32>) -> tensor<1x2xf32>} : () -> ()

// -----

// Ternary weights (codes {0, 1, 2}, z = 1). Bit-serial by default: 2 planes of 4-bit indices.
// With base3=true, pairs index 9-entry tables (bitnet.cpp TL1) by q0 + 3 q1, one plane; the
// symmetric table keeps 5 entries, an index > 4 is stored as sign (8) | 8 - idx.
// Row 0, pairs (0,1) (2,1) (2,2) (0,1): 3, 5 -> 11, 8 -> 8, 3.
// CHECK-LABEL: "func.func"
// CHECK: "lut.table"(%{{.*}}) {act_group = 0 : i64, base3 = false, g = 4 : i64, sum_group = 8 : i64, symmetric = true, table_type = f32}
// CHECK: tensor<2x2x2xui4>
// CHECK: "lut.gemm"{{.*}}bits = 2 : i64{{.*}}ternary = true
// BASE3-LABEL: "func.func"
// BASE3: ^bb0(%[[X:.*]]: tensor<1x8xf32>):
// BASE3-NEXT: %[[T:.*]]:3 = "lut.table"(%[[X]]) {act_group = 0 : i64, base3 = true, g = 2 : i64, sum_group = 8 : i64, symmetric = true, table_type = f32} : (tensor<1x8xf32>) -> (tensor<1x4x5xf32>, tensor<1x1xf32>, tensor<1x1xf32>)
// BASE3: %[[P:.*]] = "graph.constant"() {value = dense<{{\[\[\[}}3, 11, 8, 3], [4, 4, 2, 10]]]> : tensor<1x2x4xui4>}
// BASE3-NEXT: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %[[P]], %{{.*}}) {act_group = 0 : i64, base3 = true, bits = 2 : i64, {{.*}}g = 2 : i64, {{.*}}ternary = true}
"func.func"() ({
^bb0(%x: tensor<1x8xf32>):
  %q = "graph.constant"() {value = dense<[[0, 1, 2, 1, 2, 2, 0, 1], [1, 1, 1, 1, 2, 0, 0, 2]]> : tensor<2x8xui2>} : () -> tensor<2x8xui2>
  %s = "graph.constant"() {value = dense<[[0.5], [0.25]]> : tensor<2x1xf32>} : () -> tensor<2x1xf32>
  %0 = "graph.mpgemm"(%x, %q, %s) {bits = 2 : i64, group_size = 8 : i64, ternary = true} : (tensor<1x8xf32>, tensor<2x8xui2>, tensor<2x1xf32>) -> tensor<1x2xf32>
  "func.return"(%0) : (tensor<1x2xf32>) -> ()
}) {sym_name = "ternary", function_type = (tensor<1x8xf32>) -> tensor<1x2xf32>} : () -> ()

// -----

// Zero points pass through to lut.gemm; codes only known at run time are repacked by a
// lut.repack op; a group size that is not a multiple of g keeps the mpgemm, with the reason.
// CHECK-LABEL: "func.func"
// CHECK: ^bb0(%[[X:[a-z0-9]+]]: tensor<2x12xf32>, %[[Q:[a-z0-9]+]]: tensor<3x12xui4>, %[[S:[a-z0-9]+]]: tensor<3x3xf32>, %[[Z:[a-z0-9]+]]: tensor<3x3xui4>
// CHECK-NEXT: %[[T:.*]]:3 = "lut.table"(%[[X]])
// CHECK-NEXT: %[[P:.*]] = "lut.repack"(%[[Q]]) {base3 = false, bits = 4 : i64, g = 4 : i64, symmetric = true} : (tensor<3x12xui4>) -> tensor<4x3x3xui4>
// CHECK-NEXT: "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, %[[P]], %[[S]], %[[Z]]) {{.*}}bits = 4 : i64
// CHECK: "graph.mpgemm"({{.*}}) {bits = 4 : i64, group_size = 6 : i64, lut_decision = "dequantize", lut_reason = "group size 6 is not a multiple of g = 4"}
"func.func"() ({
^bb0(%x: tensor<2x12xf32>, %q: tensor<3x12xui4>, %s: tensor<3x3xf32>, %z: tensor<3x3xui4>, %s2: tensor<3x2xf32>):
  %0 = "graph.mpgemm"(%x, %q, %s, %z) {bits = 4 : i64, group_size = 4 : i64} : (tensor<2x12xf32>, tensor<3x12xui4>, tensor<3x3xf32>, tensor<3x3xui4>) -> tensor<2x3xf32>
  %1 = "graph.mpgemm"(%x, %q, %s2) {bits = 4 : i64, group_size = 6 : i64} : (tensor<2x12xf32>, tensor<3x12xui4>, tensor<3x2xf32>) -> tensor<2x3xf32>
  "func.return"(%0, %1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> ()
}) {sym_name = "zeros", function_type = (tensor<2x12xf32>, tensor<3x12xui4>, tensor<3x3xf32>, tensor<3x3xui4>, tensor<3x2xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)} : () -> ()

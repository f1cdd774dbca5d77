// RUN: lutc opt %s -p 'quantize-weights{bits=4,group-size=4,report=none}' | filecheck %s --check-prefix=SYM
// RUN: lutc opt %s -p 'quantize-weights{bits=2,group-size=4,scheme=asym,report=none}' | filecheck %s --check-prefix=ASYM
// RUN: lutc opt %s -p 'quantize-weights{group-size=8,scheme=ternary,report=none}' | filecheck %s --check-prefix=TERNARY
// RUN: lutc opt %s -p 'quantize-weights{min-size=17,report=none}' | filecheck %s --check-prefix=SMALL
// RUN: lutc opt %s -p 'quantize-weights{bits=4,group-size=4}' -o %t 2>&1 | filecheck %s --check-prefix=REPORT

// W is 8x2 (K x N); the codes are its transpose, N x K, one scale per group of 4 k.
// sym: the largest-magnitude weight of a group lands on code 0: column 0, k 0..3 is
// [0.1, 0.4, -0.8, 0.2], so s = -0.8 / -8 = 0.1 and the codes are round(w/s) + 8.
// SYM-LABEL: "func.func"
// SYM: ^bb0(%[[X:[a-z0-9]+]]: tensor<3x8xf32>, %[[V:[a-z0-9]+]]: tensor<8x2xf32>):
// SYM-NEXT: %[[Q:.*]] = "graph.constant"() {value = dense<{{\[\[}}9, 12, 0, 10, 0, 12, 8, 5], [13, 0, 7, 11, 0, 12, 7, 15]]> : tensor<2x8xui4>}
// SYM-NEXT: %[[S:.*]] = "graph.constant"() {value = dense<{{\[\[}}0.1, -0.075], [-0.0375, -0.0875]]> : tensor<2x2xf32>}
// SYM-NEXT: %[[Y:.*]] = "graph.mpgemm"(%[[X]], %[[Q]], %[[S]]) {bits = 4 : i64, group_size = 4 : i64}
// SYM-NEXT: %[[U:.*]] = "graph.matmul"(%[[X]], %[[V]])
// SYM-NEXT: "func.return"(%[[Y]], %[[U]])

// asym: range [min, max] (stretched to hold 0) over 2^bits - 1 steps, integer zero points.
// ASYM: %[[Q:.*]] = "graph.constant"() {value = dense<{{\[\[}}2, 3, 0, 2, 3, 0, 1, 2], [0, 3, 1, 0, 3, 1, 2, 0]]> : tensor<2x8xui2>}
// ASYM-NEXT: %[[S:.*]] = "graph.constant"() {value = dense<{{\[\[}}0.4, 0.3], [0.16666667, 0.46666667]]> : tensor<2x2xf32>}
// ASYM-NEXT: %[[Z:.*]] = "graph.constant"() {value = dense<{{\[\[}}2, 1], [1, 2]]> : tensor<2x2xui2>}
// ASYM-NEXT: "graph.mpgemm"(%{{.*}}, %[[Q]], %[[S]], %[[Z]]) {bits = 2 : i64, group_size = 4 : i64}

// ternary (BitNet b1.58): s = mean |w| = 2.65 / 8 for column 0; codes round(w/s) in {-1, 0, 1}, stored + 1.
// TERNARY: %[[Q:.*]] = "graph.constant"() {value = dense<{{\[\[}}1, 2, 0, 2, 2, 0, 1, 2], [0, 2, 1, 1, 2, 0, 1, 0]]> : tensor<2x8xui2>}
// TERNARY-NEXT: %[[S:.*]] = "graph.constant"() {value = dense<{{\[\[}}0.33125], [0.3125]]> : tensor<2x1xf32>}
// TERNARY-NEXT: "graph.mpgemm"(%{{.*}}, %[[Q]], %[[S]]) {bits = 2 : i64, group_size = 8 : i64, ternary = true}

// Weights under min-size elements, and weights that are not constants, stay as they are.
// SMALL-NOT: graph.mpgemm
// SMALL: "graph.matmul"
// SMALL: "graph.matmul"

// REPORT: quantize-weights: weight at {{.*}}quantize_weights.mlir:{{[0-9]+}}:8 (8x2): weight rel-L2 0.05833, output rel-L2 0.0626
// REPORT-NOT: quantize-weights:
"func.func"() ({
^bb0(%x: tensor<3x8xf32>, %v: tensor<8x2xf32>):
  %w = "graph.constant"() {value = dense<[[0.1, -0.2], [0.4, 0.3], [-0.8, 0.05], [0.2, -0.1], [0.6, 0.7], [-0.3, -0.35], [0.0, 0.1], [0.25, -0.7]]> : tensor<8x2xf32>} : () -> tensor<8x2xf32>
  %0 = "graph.matmul"(%x, %w) : (tensor<3x8xf32>, tensor<8x2xf32>) -> tensor<3x2xf32>
  %1 = "graph.matmul"(%x, %v) : (tensor<3x8xf32>, tensor<8x2xf32>) -> tensor<3x2xf32>
  "func.return"(%0, %1) : (tensor<3x2xf32>, tensor<3x2xf32>) -> ()
}) {sym_name = "small", function_type = (tensor<3x8xf32>, tensor<8x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>)} : () -> ()

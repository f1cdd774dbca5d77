// RUN: lutc opt %s -p 'lut-rewrite{table-dtype=i8}' | filecheck %s
// RUN: lutc opt %s -p 'lut-rewrite' | filecheck %s --check-prefix=F32

// policy=auto (the default) asks the cost model (AVX2 core) per op; the choice and both
// estimates (cycles) are kept on the op. A decode-shaped 2-bit GEMV (4096 x 4096) goes to
// LUT with int8 tables; at 4 bits both are bound by the weight reads and dequantize wins the
// tie; with N = 8 the tables are not reused enough.
// CHECK-LABEL: "func.func"
// CHECK: "lut.gemm"({{.*}}) {{{.*}}bits = 2 : i64, dequant_cycles = {{[0-9]+}} : i64, {{.*}}lut_cycles = {{[0-9]+}} : i64, lut_decision = "lut"
// CHECK: "graph.mpgemm"({{.*}}) {bits = 4 : i64, dequant_cycles = {{[0-9]+}} : i64, group_size = 128 : i64, lut_cycles = {{[0-9]+}} : i64, lut_decision = "dequantize"}
// CHECK: "graph.mpgemm"({{.*}}) {bits = 2 : i64, dequant_cycles = {{[0-9]+}} : i64, group_size = 128 : i64, lut_cycles = {{[0-9]+}} : i64, lut_decision = "dequantize"}

// float tables get 8 lookups per vpermps where int8 tables get 32 per pshufb: dequantize.
// F32-NOT: lut.gemm
// F32: lut_decision = "dequantize"
"func.func"() ({
^bb0(%x: tensor<1x4096xf32>, %q2: tensor<4096x4096xui2>, %q4: tensor<4096x4096xui4>, %s: tensor<4096x32xf32>, %q8: tensor<8x4096xui2>, %s8: tensor<8x32xf32>):
  %0 = "graph.mpgemm"(%x, %q2, %s) {bits = 2 : i64, group_size = 128 : i64} : (tensor<1x4096xf32>, tensor<4096x4096xui2>, tensor<4096x32xf32>) -> tensor<1x4096xf32>
  %1 = "graph.mpgemm"(%x, %q4, %s) {bits = 4 : i64, group_size = 128 : i64} : (tensor<1x4096xf32>, tensor<4096x4096xui4>, tensor<4096x32xf32>) -> tensor<1x4096xf32>
  %2 = "graph.mpgemm"(%x, %q8, %s8) {bits = 2 : i64, group_size = 128 : i64} : (tensor<1x4096xf32>, tensor<8x4096xui2>, tensor<8x32xf32>) -> tensor<1x8xf32>
  "func.return"(%0, %1, %2) : (tensor<1x4096xf32>, tensor<1x4096xf32>, tensor<1x8xf32>) -> ()
}) {sym_name = "policy", function_type = (tensor<1x4096xf32>, tensor<4096x4096xui2>, tensor<4096x4096xui4>, tensor<4096x32xf32>, tensor<8x4096xui2>, tensor<8x32xf32>) -> (tensor<1x4096xf32>, tensor<1x4096xf32>, tensor<1x8xf32>)} : () -> ()

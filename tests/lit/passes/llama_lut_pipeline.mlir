// The whole optimizing flow on an imported LLaMA (tests/models/onnx/llama_dynamo.onnx: 2 layers,
// hidden 64, 4 heads, 2 KV heads, exported by PyTorch's dynamo exporter). Constants are elided.
//
// 1. The issue's pipeline as written. The tiny model's 64-wide projections are far below the
//    cost model's break-even for f32 tables, so every mpgemm stays on dequantize; the decision
//    and both estimates are visible on each op.
// RUN: lutc import %S/../../models/onnx/llama_dynamo.onnx | lutc opt - -p 'canonicalize,quantize-weights{bits=2,group-size=128,report=none},fuse-ops,lut-rewrite' --elide-constants | filecheck %s --check-prefix=AUTO
// AUTO-LABEL: "func.func"
// AUTO: "graph.mpgemm"({{.*}}) {bits = 2 : i64, dequant_cycles = {{[0-9]+}} : i64, group_size = 128 : i64, lut_cycles = {{[0-9]+}} : i64, lut_decision = "dequantize"} : (tensor<1x8x64xf32>, tensor<64x64xui2>, tensor<64x1xf32>) -> tensor<1x8x64xf32>
// AUTO: name = "fused_{{.*}}"
// AUTO-NOT: "graph.matmul"({{.*}}tensor<64x64xf32>)
//
// 2. Forcing the LUT mapping (policy=always), and rewriting before fusing so that the table
//    build joins the producer of its activations (the RMS norm's scaling) and Q, K and V share
//    one table set.
// RUN: lutc import %S/../../models/onnx/llama_dynamo.onnx | lutc opt - -p 'canonicalize,quantize-weights{bits=2,group-size=128,report=none},lut-rewrite{policy=always},fuse-ops' --elide-constants | filecheck %s --check-prefix=LUT
// LUT-LABEL: "func.func"
// LUT: %[[T:.*]]:3 = "graph.fused"
// LUT: "graph.reciprocal"
// LUT-NEXT: %[[N:.*]] = "graph.mul"
// LUT-NEXT: "lut.table"(%[[N]]) {{.*}}table_type = f32} : (tensor<1x8x64xf32>) -> (tensor<1x8x16x8xf32>, tensor<1x8x1xf32>, tensor<1x8x1xf32>)
// LUT: name = "fused_add_sqrt_reciprocal_mul_lut_table"
// LUT: %[[Q:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, {{.*}}lut_decision = "lut"{{.*}} -> tensor<1x8x64xf32>
// LUT: %[[K:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, {{.*}} -> tensor<1x8x32xf32>
// LUT: %[[V:.*]] = "lut.gemm"(%[[T]]#0, %[[T]]#1, %[[T]]#2, {{.*}} -> tensor<1x8x32xf32>
// LUT: name = "fused_lut_gemm_sigmoid_mul_mul_lut_table"
// LUT-NOT: "graph.mpgemm"
//
// 3. The issue's order with LUT forced: the tables are built inside the fused groups.
// RUN: lutc import %S/../../models/onnx/llama_dynamo.onnx | lutc opt - -p 'canonicalize,quantize-weights{bits=2,group-size=128,report=none},fuse-ops,lut-rewrite{policy=always}' --elide-constants | filecheck %s --check-prefix=INSIDE
// INSIDE-LABEL: "func.func"
// INSIDE: "graph.fused"
// INSIDE: "lut.table"
// INSIDE: "lut.gemm"
// INSIDE: "graph.yield"
// INSIDE-NOT: "graph.mpgemm"

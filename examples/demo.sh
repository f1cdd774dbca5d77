#!/usr/bin/env bash
# lutc's main job on the bundled examples, as far as lutc goes today.
# Run through `make demo`, which puts the project's virtualenv on PATH.
set -euo pipefail
cd "$(dirname "$0")"
MODEL=tiny_llama_q4.onnx   # a 2-layer LLaMA, 4-bit weights from onnxruntime's MatMulNBitsQuantizer
LUT_PIPELINE='canonicalize,cse,lut-rewrite{policy=always},fuse-ops'
# TVM's C++ runtime logs routine warnings on stderr; keep every other message.
without_tvm_warnings() { "$@" 2> >(grep -v -E '^\[[0-9:]+\] .*Warning' >&2); }

echo "== 1. Import the ONNX model: MatMulNBits nodes become graph.mpgemm (the first lines)"
lutc import "$MODEL" --elide-constants | grep -m 3 -B1 '"graph.mpgemm"'

echo
echo "== 2. Rewrite every mpGEMM into table lookups and fuse: $LUT_PIPELINE"
lutc import "$MODEL" | lutc opt - -p "$LUT_PIPELINE" --elide-constants --timing -o lut_form.mlir
echo "   op counts in the LUT form:"
grep -oE '"(lut|graph)\.(table|gemm|mpgemm|fused|matmul)"' lut_form.mlir | sort | uniq -c | sed 's/^/   /'
grep -m 1 -A4 '"lut.table"' lut_form.mlir

echo
echo "== 3. Run the LUT form in the reference interpreter and compare with onnxruntime"
lutc run "$MODEL" -p "$LUT_PIPELINE" --compare-onnxruntime

echo
echo "== 4. Compile the LUT form for this CPU (TVM/LLVM), then run the deployed library and compare with onnxruntime"
without_tvm_warnings lutc compile "$MODEL" --target cpu -p "$LUT_PIPELINE" -o tiny_llama_cpu
without_tvm_warnings lutc run tiny_llama_cpu --compare-onnxruntime "$MODEL"

echo
echo "== 5. Compile a SwiGLU feed-forward block for the edge LUT accelerator and simulate it"
python make_ffn.py > ffn.mlir
ACCEL_PIPELINE='canonicalize,quantize-weights{bits=2,group-size=64,report=none},lut-rewrite{policy=always,table-dtype=i8},fuse-ops'
echo "   the reference interpreter, then the simulated accelerator (same seeded input):"
lutc run ffn.mlir -p "$ACCEL_PIPELINE"
lutc run ffn.mlir --target accel --config accel/edge.toml -p "$ACCEL_PIPELINE"
rm -rf lut_form.mlir tiny_llama_cpu ffn.mlir

# RUN: lutc sim %s --config %S/../../../examples/accel/lut_tensor_core.toml | filecheck %s
#
# A 2-bit GEMV (1 x 256 by 256 x 256) on the LUT-Tensor-Core-like design: fp16 symmetric
# tables, fp32 accumulation, an 8 x 256 LUT array.
#   LUT.BUILD 64 groups x 8 entries / 64 per cycle = 8 cycles
#   LUT.MMA   ceil(1/8) x ceil(256/256) x 64 passes x 2 planes = 128 cycles, 1 of 8 rows used
# CHECK: program 'ltc_gemv' on 'lut_tensor_core' (1000 MHz)
# CHECK: lut 2 136
# CHECK: lut array: 32768 lookups, peak 2048/cycle, utilization {{[0-9.]+}}% of total, 12.5% while LUT.MMA runs
# CHECK: weights 18432 0
# CHECK: opcodes: LOAD 3, STORE 1, LUT.BUILD 1, LUT.MMA 1, VEC.DEQ 1, FINISH 1
.program ltc_gemv
.tensor x input f32 1x256 at=dram:0x0 init=random:51
.tensor w weight u8 2x256x32 at=dram:0x400 init=random:52
.tensor colp weight f32 2x256 at=dram:0x4400 init=random:53
.tensor y output f32 1x256 at=dram:0x4c00
.layer gemv
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=1024 push=next
LOAD dst=sp:0x400 src=dram:0x400 rows=1 bytes=16384 push=next
LOAD dst=sp:0x4400 src=dram:0x4400 rows=1 bytes=2048 push=next
LUT.BUILD dst=sp:0x4c00:f16 src=sp:0x0:f32 rows=1 k=256 qgroup=256 sym=1 pop=prev
LUT.MMA dst=acc:0x0:f32 tbl=sp:0x4c00:f16 w=sp:0x400 m=1 n=256 k=256 bits=2 sym=1 pop=prev
VEC.DEQ dst=sp:0x5100:f32 a=acc:0x0:f32 b=sp:0x4400:f32 c=sp:0x5000:f32 rows=1 cols=256 imm=0.5 pop=prev push=next
STORE dst=dram:0x4c00 src=sp:0x5100 rows=1 bytes=1024 pop=prev
FINISH

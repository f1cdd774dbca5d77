# RUN: lutc sim %s --config %S/../../../examples/accel/edge.toml | filecheck %s
#
# A 2-bit LUT GEMV (1 x 64 by 64 x 32) on the edge design: the analytical timing is
#   loads    x 256 B, w 512 B, colp 256 B: 3 x 64 latency + (32 + 64 + 32) = 320 cycles
#   LUT.BUILD 1 row x 16 groups x 8 entries / 16 per cycle = 8 cycles
#   LUT.MMA  ceil(1/2) x ceil(32/32) x 16 passes x 2 planes x 1 cycle = 32 cycles
#   VEC.DEQ  ceil(32 / 16 lanes) x 2 ops = 4 cycles
#   stores   y 128 B (64 + 16) and acc 64 B (64 + 8) = 152 cycles
# CHECK: lutc accel simulation: program 'gemv_lut2' on 'edge' (500 MHz)
# CHECK-NEXT: total cycles: 476
# CHECK-NEXT: total time: 0.952 us
# CHECK-NEXT: instructions: 9
# CHECK: queue busy stall idle
# CHECK-NEXT: load 320 0 156
# CHECK-NEXT: compute 44 280 152
# CHECK-NEXT: store 152 324 0
# CHECK: lut 2 40 436 8.4%
# CHECK: vec 1 4 472 0.8%
# CHECK: stalls:
# CHECK-NEXT: compute waits for token from load: 280 cycles
# CHECK-NEXT: store waits for token from compute: 324 cycles
# CHECK: gemv 6 0 324 324 320 44 0
# CHECK-NEXT: writeback 2 324 476 152 0 0 152
# CHECK: lut array: 1024 lookups, peak 64/cycle, utilization 3.4% of total, 50.0% while LUT.MMA runs
# CHECK: weights 768 0
# CHECK-NEXT: activations 256 192
# CHECK-NEXT: spills 0 0
# CHECK: scratchpad: high-water 1408 of 262144 bytes (0.5%), 1288 bytes written
# CHECK-NEXT: accumulator: high-water 64 of 16384 bytes (0.4%)
# CHECK-NEXT: opcodes: LOAD 3, STORE 2, LUT.BUILD 1, LUT.MMA 1, VEC.DEQ 1, FINISH 1
# CHECK-NEXT: energy: 51010.6 pJ total, 51010.6 pJ per token (1 token)
# CHECK: by level: dram 48640.0, scratchpad 2060.8, accumulator 192.0, logic 117.8
# CHECK-NOT: warning
.program gemv_lut2
.tensor x input f32 1x64 at=dram:0x0 init=random:11
.tensor w weight u8 2x32x8 at=dram:0x100 init=random:12
.tensor colp weight f32 2x32 at=dram:0x300 init=random:13
.tensor y output f32 1x32 at=dram:0x400
.tensor acc output i16 1x32 at=dram:0x480
.layer gemv
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=256 push=next
LOAD dst=sp:0x100 src=dram:0x100 rows=1 bytes=512 push=next
LOAD dst=sp:0x300 src=dram:0x300 rows=1 bytes=256 push=next
LUT.BUILD dst=sp:0x400:i8 src=sp:0x0:f32 rows=1 k=64 qgroup=64 sym=1 pop=prev
LUT.MMA dst=acc:0x0:i16 tbl=sp:0x400:i8 w=sp:0x100 m=1 n=32 k=64 bits=2 sym=1 pop=prev
VEC.DEQ dst=sp:0x500:f32 a=acc:0x0:i16 b=sp:0x300:f32 c=sp:0x480:f32 rows=1 cols=32 imm=0.5 pop=prev push=next
.layer writeback
STORE dst=dram:0x400 src=sp:0x500 rows=1 bytes=128 pop=prev
STORE dst=dram:0x480 src=acc:0x0 rows=1 bytes=64
FINISH

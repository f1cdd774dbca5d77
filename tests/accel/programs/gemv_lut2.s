# GEMV y = x . W^T with 2-bit weights through LUT.BUILD + LUT.MMA, on examples/accel/edge.toml
# (g = 4, symmetric int8 tables of 8 entries, int16 accumulator).
#
# x: 1 x 64 f32.  W: 32 x 64 codes in {0..3}, stored as bit planes [2][32][64/8] bytes.
# colp: per-output-column parameters of the epilogue, [2][32] f32: scale s[n], then
#       z'[n] = z[n] - (2^bits - 1)/2, the zero point in the symmetric tables' frame.
# y[n] = s[n] * sum_k x[k] * (q[n,k] - z[n]);  acc (the raw accumulator) is stored too.
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
# Tables: 16 groups x 1 row x 8 entries (128 B) at 0x400, row params [1][2][1] f32 at 0x480.
LUT.BUILD dst=sp:0x400:i8 src=sp:0x0:f32 rows=1 k=64 qgroup=64 sym=1 pop=prev
LUT.MMA dst=acc:0x0:i16 tbl=sp:0x400:i8 w=sp:0x100 m=1 n=32 k=64 bits=2 sym=1 pop=prev
# y = s * (0.5 * scale_x * acc - z' * sum(x)): 0.5 because symmetric tables count 2q - 3.
VEC.DEQ dst=sp:0x500:f32 a=acc:0x0:i16 b=sp:0x300:f32 c=sp:0x480:f32 rows=1 cols=32 imm=0.5 pop=prev push=next
.layer writeback
STORE dst=dram:0x400 src=sp:0x500 rows=1 bytes=128 pop=prev
STORE dst=dram:0x480 src=acc:0x0 rows=1 bytes=64
FINISH

# GEMV over two activation rows (a 2 x 64 by 64 x 16 product) with 4-bit weights, on
# examples/accel/edge.toml: one LUT.BUILD (two rows of tables), one LUT.MMA over 4 bit
# planes (m = 2 matches the LUT array's rows), a scale/zero epilogue, the raw accumulator
# stored for a bit-exact check.
.program gemv_lut4
.tensor x input f32 2x64 at=dram:0x0 init=random:21
.tensor w weight u8 4x16x8 at=dram:0x200 init=random:22
.tensor colp weight f32 2x16 at=dram:0x400 init=random:23
.tensor y output f32 2x16 at=dram:0x500
.tensor acc output i16 2x16 at=dram:0x600
.layer gemv4
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=512 push=next
LOAD dst=sp:0x200 src=dram:0x200 rows=4 bytes=128 push=next
LOAD dst=sp:0x400 src=dram:0x400 rows=1 bytes=128 push=next
# Tables: 16 groups x 2 rows x 8 entries (256 B) at 0x800; row params [1][2][2] f32 at 0x900.
LUT.BUILD dst=sp:0x800:i8 src=sp:0x0:f32 rows=2 k=64 qgroup=64 sym=1 pop=prev
LUT.MMA dst=acc:0x0:i16 tbl=sp:0x800:i8 w=sp:0x200 m=2 n=16 k=64 bits=4 sym=1 pop=prev
VEC.DEQ dst=sp:0xa00:f32 a=acc:0x0:i16 b=sp:0x400:f32 c=sp:0x900:f32 rows=2 cols=16 imm=0.5 pop=prev push=next
STORE dst=dram:0x500 src=sp:0xa00 rows=1 bytes=128 pop=prev
STORE dst=dram:0x600 src=acc:0x0 rows=2 bytes=32
FINISH

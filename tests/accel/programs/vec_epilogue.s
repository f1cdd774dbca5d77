# A vector epilogue on examples/accel/edge.toml: bias add (per-column broadcast), SiLU,
# then a row softmax (RED.MAX, subtract per row, EXP, RED.SUM, RECIP, multiply per row),
# written as f32, converted to f16, and requantized to int8 (round half to even, saturate).
.program vec_epilogue
.tensor x input f32 4x16 at=dram:0x0 init=random:41
.tensor bias weight f32 16 at=dram:0x100 init=random:42
.tensor y output f32 4x16 at=dram:0x200
.tensor yh output f16 4x16 at=dram:0x300
.tensor yq output i8 4x16 at=dram:0x380
.layer epilogue
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=256
LOAD dst=sp:0x100 src=dram:0x100 rows=1 bytes=64 push=next
VEC.ADD dst=sp:0x200:f32 a=sp:0x0:f32 b=sp:0x100:f32:col rows=4 cols=16 pop=prev
VEC.SILU dst=sp:0x200:f32 a=sp:0x200:f32 rows=4 cols=16
.layer softmax
RED.MAX dst=sp:0x300:f32 src=sp:0x200:f32 rows=4 cols=16
VEC.SUB dst=sp:0x400:f32 a=sp:0x200:f32 b=sp:0x300:f32:row rows=4 cols=16
VEC.EXP dst=sp:0x400:f32 a=sp:0x400:f32 rows=4 cols=16
RED.SUM dst=sp:0x500:f32 src=sp:0x400:f32 rows=4 cols=16
VEC.RECIP dst=sp:0x500:f32 a=sp:0x500:f32 rows=4 cols=1
VEC.MUL dst=sp:0x600:f32 a=sp:0x400:f32 b=sp:0x500:f32:row rows=4 cols=16 push=next
VEC.MOV dst=sp:0x700:f16 a=sp:0x600:f32 rows=4 cols=16 push=next
VEC.MULI dst=sp:0x780:i8 a=sp:0x600:f32 rows=4 cols=16 imm=127 push=next
.layer writeback
STORE dst=dram:0x200 src=sp:0x600 rows=1 bytes=256 pop=prev
STORE dst=dram:0x300 src=sp:0x700 rows=1 bytes=128 pop=prev
STORE dst=dram:0x380 src=sp:0x780 rows=1 bytes=64 pop=prev
FINISH

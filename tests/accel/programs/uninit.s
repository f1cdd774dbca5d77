# A read of uninitialized scratchpad: VEC.ADD reads sp[0x100..0x140), which nothing wrote.
.program uninit
.tensor x input f32 1x16 at=dram:0x0 init=zeros
.tensor y output f32 1x16 at=dram:0x40
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=64 push=next
VEC.ADD dst=sp:0x200:f32 a=sp:0x0:f32 b=sp:0x100:f32 rows=1 cols=16 pop=prev push=next
STORE dst=dram:0x40 src=sp:0x200 rows=1 bytes=64 pop=prev
FINISH

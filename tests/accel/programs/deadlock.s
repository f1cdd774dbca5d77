# A deadlock: the LOAD pushes no token, so the compute queue waits forever for one.
.program deadlock
.tensor x input f32 1x16 at=dram:0x0 init=zeros
.tensor y output f32 1x16 at=dram:0x40
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=64
VEC.RELU dst=sp:0x40:f32 a=sp:0x0:f32 rows=1 cols=16 pop=prev push=next
STORE dst=dram:0x40 src=sp:0x40 rows=1 bytes=64 pop=prev
FINISH

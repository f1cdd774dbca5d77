# A data race: the second LOAD overwrites sp[0x0..0x1000) while VEC.EXP is still reading it,
# because it does not wait for a token from the compute queue.
.program race
.tensor x input f32 2x1024 at=dram:0x0 init=zeros
.tensor y output f32 1x1024 at=dram:0x2000
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4096 push=next
LOAD dst=sp:0x0 src=dram:0x1000 rows=1 bytes=4096
VEC.EXP dst=sp:0x1000:f32 a=sp:0x0:f32 rows=1 cols=1024 pop=prev push=next
STORE dst=dram:0x2000 src=sp:0x1000 rows=1 bytes=4096 pop=prev
FINISH

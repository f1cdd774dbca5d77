# A circular wait: the load queue waits for the compute queue, which waits for the load queue.
.program circular_wait
.tensor x input f32 1x16 at=dram:0x0 init=zeros
.tensor y output f32 1x16 at=dram:0x40
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=64 pop=next push=next
VEC.RELU dst=sp:0x40:f32 a=sp:0x0:f32 rows=1 cols=16 pop=prev push=prev,next
STORE dst=dram:0x40 src=sp:0x40 rows=1 bytes=64 pop=prev
FINISH

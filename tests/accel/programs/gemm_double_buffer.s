# Tiled int8 GEMM C = A . B on the dense MMA array of examples/accel/edge.toml, with double
# buffering: while the MMA array works on one tile of B, the load DMA fetches the next into
# the other buffer, and the store DMA writes the previous result tile.
#
# A: 16 x 64 i8.  Bt = B^T: 32 x 64 i8 (n x k rows, so an 8-column tile of B is 512
# contiguous bytes).  C: 16 x 32 i32, written one 16 x 8 tile (32-byte rows, 128-byte
# DRAM pitch) at a time with a 2-D DMA.
#
# Tokens: load -> compute "tile t is in buffer t%2"; compute -> load "buffer t%2 is free";
# compute -> store "accumulator t%2 holds C tile t"; store -> compute "accumulator t%2 is free".
.program gemm_double_buffer
.tensor a input i8 16x64 at=dram:0x0 init=random:31
.tensor bt weight i8 32x64 at=dram:0x400 init=random:32
.tensor c output i32 16x32 at=dram:0xc00
.layer gemm
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=1024
LOAD dst=sp:0x400 src=dram:0x400 rows=8 bytes=64 push=next
LOAD dst=sp:0x600 src=dram:0x600 rows=8 bytes=64 push=next
LOAD dst=sp:0x400 src=dram:0x800 rows=8 bytes=64 pop=next push=next
LOAD dst=sp:0x600 src=dram:0xa00 rows=8 bytes=64 pop=next push=next
MMA dst=acc:0x0:i32 a=sp:0x0:i8 b=sp:0x400:i8 m=16 n=8 k=64 tb=1 pop=prev push=prev,next
MMA dst=acc:0x200:i32 a=sp:0x0:i8 b=sp:0x600:i8 m=16 n=8 k=64 tb=1 pop=prev push=prev,next
MMA dst=acc:0x0:i32 a=sp:0x0:i8 b=sp:0x400:i8 m=16 n=8 k=64 tb=1 pop=prev,next push=next
MMA dst=acc:0x200:i32 a=sp:0x0:i8 b=sp:0x600:i8 m=16 n=8 k=64 tb=1 pop=prev,next push=next
STORE dst=dram:0xc00 src=acc:0x0 rows=16 bytes=32 dstride=128 pop=prev push=prev
STORE dst=dram:0xc20 src=acc:0x200 rows=16 bytes=32 dstride=128 pop=prev push=prev
STORE dst=dram:0xc40 src=acc:0x0 rows=16 bytes=32 dstride=128 pop=prev
STORE dst=dram:0xc60 src=acc:0x200 rows=16 bytes=32 dstride=128 pop=prev
FINISH

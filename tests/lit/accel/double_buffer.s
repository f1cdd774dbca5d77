# RUN: lutc sim %s --config %S/../../../examples/accel/edge.toml | filecheck %s
# RUN: lutc sim %s --config %S/../../../examples/accel/edge.toml --json | filecheck --check-prefix=JSON %s
#
# Double-buffered int8 GEMM: 4 tiles of B, each loaded (64 + 512/8 = 128 cycles) while the
# previous one is multiplied (16 cycles) and the one before stored (64 + 512/8 = 128 cycles).
# The queues overlap: 848 cycles in total against 704 + 64 + 512 = 1280 busy.
# CHECK: total cycles: 848
# CHECK: load 704 0 144
# CHECK-NEXT: compute 64 656 128
# CHECK-NEXT: store 512 336 0
# CHECK: mma 4 64 784 7.5%
# CHECK: opcodes: LOAD 5, STORE 4, MMA 4, FINISH 1
# JSON: "total_cycles": 848,
# JSON: "compute": {
# JSON: "stall": 656,
# JSON: "token from load": 656
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

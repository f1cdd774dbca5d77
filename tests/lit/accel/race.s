# RUN: not lutc sim %s --config %S/../../../examples/accel/edge.toml 2>&1 | filecheck %s
#
# The second LOAD overwrites the buffer VEC.EXP is reading: no token orders them.
# CHECK: race.s:{{[0-9]+}}: error: instruction #1 (load queue, LOAD): data race: writes dst sp[0x0..0x1000) at cycle 576 while instruction #2 (compute queue, VEC.EXP) reads sp[0x0..0x1000) (cycles 576..832); a dependency token between the two is missing
.program race
.tensor x input f32 2x1024 at=dram:0x0 init=zeros
.tensor y output f32 1x1024 at=dram:0x2000
LOAD dst=sp:0x0 src=dram:0x0 rows=1 bytes=4096 push=next
LOAD dst=sp:0x0 src=dram:0x1000 rows=1 bytes=4096
VEC.EXP dst=sp:0x1000:f32 a=sp:0x0:f32 rows=1 cols=1024 pop=prev push=next
STORE dst=dram:0x2000 src=sp:0x1000 rows=1 bytes=4096 pop=prev
FINISH

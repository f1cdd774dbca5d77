# RUN: not lutc sim %s --config %S/../../../examples/accel/edge.toml 2>&1 | filecheck %s
#
# A 256-byte LOAD into the last 128 bytes of edge's 256 KiB scratchpad.
# CHECK: out_of_bounds.s:{{[0-9]+}}: error: instruction #0 (load queue, LOAD): scratchpad overflow: dst sp[0x3ff80..0x40080) ends 128 bytes past the end of the 262144-byte scratchpad
.program oob
.tensor x input f32 1x64 at=dram:0x0 init=zeros
.tensor y output f32 1x64 at=dram:0x100
LOAD dst=sp:0x3ff80 src=dram:0x0 rows=1 bytes=256 push=next
VEC.RELU dst=sp:0x0:f32 a=sp:0x3ff80:f32 rows=1 cols=64 pop=prev push=next
STORE dst=dram:0x100 src=sp:0x0 rows=1 bytes=256 pop=prev
FINISH

// RUN: lutc opt %s -p 'plan-memory{capacity=1024,alignment=64}' --split-input-file | filecheck %s
// RUN: lutc opt %s -p 'plan-memory{capacity=768,alignment=64}' --split-input-file | filecheck %s --check-prefix=SMALL
// RUN: lutc opt %s -p 'plan-memory{capacity=768,solver=greedy}' --split-input-file | filecheck %s --check-prefix=GREEDY

// A chain fits at 1024 bytes: no reloads, no evictions, each result placed apart from its
// operand, no traffic; at 768 too.
// CHECK: "graph.exp"(%arg0) {mem.addr = array<i64: [[A:[0-9]+]]>, mem.operand_addr = array<i64: {{[0-9]+}}>, mem.step = 0
// CHECK-NOT: mem.reload
// CHECK-NOT: mem.evict
// CHECK: "graph.tanh"(%0) {mem.addr = array<i64: [[B:[0-9]+]]>, mem.operand_addr = array<i64: [[A]]>, mem.step = 1
// CHECK: "graph.relu"(%1) {mem.addr = array<i64: {{[0-9]+}}>, mem.operand_addr = array<i64: [[B]]>, mem.step = 2
// CHECK: mem.summary = ["@chain: solver=cpsat-joint status=OPTIMAL traffic=0 bound=0 (global) gap=0.0% compulsory=512 dram_total=512 capacity=1024
// SMALL: mem.summary = ["@chain: solver=cpsat-joint status=OPTIMAL traffic=0
// GREEDY: mem.summary = ["@chain: solver=greedy status=FEASIBLE traffic=0 bound=none
"func.func"() ({
^bb0(%x: tensor<4x16xf32>):
  %a = "graph.exp"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %b = "graph.tanh"(%a) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %c = "graph.relu"(%b) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  "func.return"(%c) : (tensor<4x16xf32>) -> ()
}) {sym_name = "chain", function_type = (tensor<4x16xf32>) -> tensor<4x16xf32>} : () -> ()

// -----

// A diamond whose long branch keeps four 256-byte tensors live: at 1024 bytes it fits; at
// 768 every order must evict an intermediate after one use (mem.evict) and reload it before
// its last (mem.reload): one spill + one reload of 256 bytes, which CP-SAT proves optimal.
// CHECK: mem.summary = ["@diamond: solver=cpsat-joint status=OPTIMAL traffic=0
// SMALL: "graph.exp"(%arg0)
// SMALL: {{.*}}mem.evict = array<i64: 0>
// SMALL: "graph.add"(%{{.*}}, %{{.*}}) {{{.*}}mem.reload = array<i64: 1>, mem.step = 5
// SMALL: mem.summary = ["@diamond: solver=cpsat-joint status=OPTIMAL traffic=512 bound=512 (global) gap=0.0% compulsory=512 dram_total=1024 capacity=768
// GREEDY: mem.summary = ["@diamond: solver=greedy status=FEASIBLE traffic={{[0-9]+}} bound=none
"func.func"() ({
^bb0(%x: tensor<4x16xf32>):
  %a = "graph.exp"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %p = "graph.neg"(%x) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %b = "graph.tanh"(%a) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %c = "graph.relu"(%b) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %q = "graph.add"(%c, %p) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %r = "graph.add"(%q, %a) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  "func.return"(%r) : (tensor<4x16xf32>) -> ()
}) {sym_name = "diamond", function_type = (tensor<4x16xf32>) -> tensor<4x16xf32>} : () -> ()

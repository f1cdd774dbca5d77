// RUN: lutc opt %s -p 'canonicalize,cse' --print-ir-after-all -o /dev/null 2>&1 | filecheck %s
// RUN: lutc opt %s -p 'canonicalize,cse' --timing -o /dev/null 2>&1 | filecheck %s --check-prefix=TIMING

// CHECK: // -----// IR Dump After canonicalize //----- //
// CHECK-NOT: "graph.neg"
// CHECK: // -----// IR Dump After cse //----- //
// TIMING: Pass execution timing report
// TIMING: canonicalize
// TIMING: cse
// TIMING: Total
"func.func"() ({
^bb0(%x: tensor<2xf32>):
  %0 = "graph.neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %1 = "graph.neg"(%0) : (tensor<2xf32>) -> tensor<2xf32>
  "func.return"(%1) : (tensor<2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// RUN: lutc opt %s --split-input-file --verify-diagnostics

"func.func"() ({
^bb0(%x: tensor<2x3xf32>, %y: tensor<4x3xf32>):
  // expected-error@+1 {{'graph.matmul' op inner dimensions differ: [2, 3] x [4, 3]}}
  %0 = "graph.matmul"(%x, %y) : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  "func.return"(%x) : (tensor<2x3xf32>) -> ()
}) {sym_name = "matmul", function_type = (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2x3xf32>, %y: tensor<3x2xf32>):
  // expected-error@+1 {{'graph.add' op shapes [2, 3] and [3, 2] do not broadcast}}
  %0 = "graph.add"(%x, %y) : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  "func.return"(%x) : (tensor<2x3xf32>) -> ()
}) {sym_name = "add", function_type = (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2x3xf32>):
  // expected-error@+1 {{'graph.shuffle' op is not registered}}
  %0 = "graph.shuffle"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  "func.return"(%0) : (tensor<2x3xf32>) -> ()
}) {sym_name = "unknown", function_type = (tensor<2x3xf32>) -> tensor<2x3xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<6xf32>):
  // expected-error@+1 {{cannot reshape tensor<6xf32> (6 elements) to [4]}}
  %0 = "graph.reshape"(%x) {shape = array<i64: 4>} : (tensor<6xf32>) -> tensor<4xf32>
  "func.return"(%x) : (tensor<6xf32>) -> ()
}) {sym_name = "reshape", function_type = (tensor<6xf32>) -> tensor<6xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<1x64xf32>):
  %q = "graph.constant"() {value = dense<1> : tensor<8x64xui4>} : () -> tensor<8x64xui4>
  %s = "graph.constant"() {value = dense<0.5> : tensor<8x2xf32>} : () -> tensor<8x2xf32>
  // expected-error@+1 {{codes of a 2-bit mpgemm must be ui2, got ui4}}
  %0 = "graph.mpgemm"(%x, %q, %s) {bits = 2 : i64, group_size = 32 : i64} : (tensor<1x64xf32>, tensor<8x64xui4>, tensor<8x2xf32>) -> tensor<1x8xf32>
  "func.return"(%x) : (tensor<1x64xf32>) -> ()
}) {sym_name = "mpgemm", function_type = (tensor<1x64xf32>) -> tensor<1x64xf32>} : () -> ()

// -----

// expected-error@+1 {{'func.func' op returns (tensor<3xf32>) but the function type says (tensor<3xf32>) -> tensor<4xf32>}}
"func.func"() ({
^bb0(%x: tensor<3xf32>):
  "func.return"(%x) : (tensor<3xf32>) -> ()
}) {sym_name = "signature", function_type = (tensor<3xf32>) -> tensor<4xf32>} : () -> ()

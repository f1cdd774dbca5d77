// RUN: lutc opt %s --split-input-file --verify-diagnostics

"func.func"() ({
^bb0(%x: tensor<2xf32>):
  // expected-error@+1 {{use of undefined value '%y'}}
  %0 = "graph.relu"(%y) : (tensor<2xf32>) -> tensor<2xf32>
  "func.return"(%0) : (tensor<2xf32>) -> ()
}) {sym_name = "undefined", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2xf32>):
  // expected-error@+1 {{use of value '%x' as tensor<3xf32>, but it has type tensor<2xf32>}}
  %0 = "graph.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  "func.return"(%0) : (tensor<3xf32>) -> ()
}) {sym_name = "mismatch", function_type = (tensor<2xf32>) -> tensor<3xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2xf32>):
  // expected-error@+1 {{expected an element type}}
  %0 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<2xfloat>
}) {sym_name = "bad_type", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2xf32>):
  %0 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  // expected-error@+1 {{redefinition of SSA value '%0'}}
  %0 = "graph.relu"(%x) : (tensor<2xf32>) -> tensor<2xf32>
  "func.return"(%0) : (tensor<2xf32>) -> ()
}) {sym_name = "redefinition", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// -----

"func.func"() ({
^bb0(%x: tensor<2xf32>):
  // expected-error@+1 {{'graph.relu' defines 1 results but its type lists 2}}
  %0 = "graph.relu"(%x) : (tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)
  "func.return"(%0) : (tensor<2xf32>) -> ()
}) {sym_name = "counts", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

// -----

// expected-error@+1 {{expected an operation name in quotes}}
func.func @pretty(%x: tensor<2xf32>) -> tensor<2xf32>

// RUN: not lutc opt %s -p 'canonicalize,nope' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not lutc opt %s -p 'fold-constants{size=3}' 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: not lutc opt %s -p 'fold-constants{size-limit=big}' 2>&1 | filecheck %s --check-prefix=VALUE

// UNKNOWN: <pipeline>:1:14: error: unknown pass 'nope' (known passes: {{.*}}canonicalize{{.*}})
// OPTION: <pipeline>:1:16: error: pass 'fold-constants' has no option 'size' (options: size-limit)
// VALUE: error: invalid value 'big' for option 'size-limit' of pass 'fold-constants': expected an integer
"func.func"() ({
^bb0(%x: tensor<2xf32>):
  "func.return"(%x) : (tensor<2xf32>) -> ()
}) {sym_name = "main", function_type = (tensor<2xf32>) -> tensor<2xf32>} : () -> ()

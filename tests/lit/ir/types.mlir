// RUN: lutc opt %s | filecheck %s

// Every element type, dynamic dimensions and rank-0 tensors print as MLIR spells them.
// CHECK: ^bb0(%{{.*}}: tensor<?x4xf32>, %{{.*}}: tensor<f16>, %{{.*}}: tensor<2xbf16>, %{{.*}}: tensor<2xf64>, %{{.*}}: tensor<3xi64>, %{{.*}}: tensor<3xi32>, %{{.*}}: tensor<3xi16>, %{{.*}}: tensor<3xi8>, %{{.*}}: tensor<3xui8>, %{{.*}}: tensor<8xi4>, %{{.*}}: tensor<8xui4>, %{{.*}}: tensor<8xi2>, %{{.*}}: tensor<8xui2>, %{{.*}}: tensor<5xi1>):
"func.func"() ({
^bb0(%a: tensor<?x4xf32>, %b: tensor<f16>, %c: tensor<2xbf16>, %d: tensor<2xf64>, %e: tensor<3xi64>, %f: tensor<3xi32>, %g: tensor<3xi16>, %h: tensor<3xi8>, %i: tensor<3xui8>, %j: tensor<8xi4>, %k: tensor<8xui4>, %l: tensor<8xi2>, %m: tensor<8xui2>, %n: tensor<5xi1>):
  "func.return"(%a) : (tensor<?x4xf32>) -> ()
}) {sym_name = "types", function_type = (tensor<?x4xf32>, tensor<f16>, tensor<2xbf16>, tensor<2xf64>, tensor<3xi64>, tensor<3xi32>, tensor<3xi16>, tensor<3xi8>, tensor<3xui8>, tensor<8xi4>, tensor<8xui4>, tensor<8xi2>, tensor<8xui2>, tensor<5xi1>) -> tensor<?x4xf32>} : () -> ()

#!/usr/bin/env bash
# lutc's main job on the bundled example, as far as lutc goes today.
# Run through `make demo`, which puts the project's virtualenv on PATH.
set -euo pipefail
cd "$(dirname "$0")"

echo "== 1. The example model: a two-layer MLP, in lutc's IR (large constants elided)"
lutc opt mlp.mlir --elide-constants

echo
echo "== 2. Simplify it: canonicalize, cse, fold-constants, dce (timing on stderr)"
lutc opt mlp.mlir -p canonicalize,cse,fold-constants,dce --elide-constants --timing

echo
echo "== 3. Run it in the reference interpreter (seeded random input)"
lutc run mlp.mlir -p canonicalize,cse,fold-constants,dce

"""Hypothesis strategies: random well-typed graphs built through the IR API."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lutc.ir import Builder, Module, make_function, sync_function_type, tensor
from lutc.ir.core import function_body

UNARY = ["graph.relu", "graph.neg", "graph.abs", "graph.tanh", "graph.sigmoid", "graph.silu", "graph.gelu", "graph.erf"]
BINARY = ["graph.add", "graph.sub", "graph.mul", "graph.max", "graph.min"]


@st.composite
def random_graphs(draw, max_ops: int = 12) -> tuple[Module, list[np.ndarray]]:
    """A function of 1-2 inputs with up to `max_ops` ops, plus matching inputs.

    Constants include splats of 0 and 1, so that canonicalization has work to do.
    """
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    n_inputs = draw(st.integers(1, 2))
    fn = make_function("main", [tensor((rows, cols), "f32")] * n_inputs)
    b = Builder(function_body(fn))
    values = list(function_body(fn).args)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        x = draw(st.sampled_from(values))
        kind = draw(st.sampled_from(["unary", "binary", "constant", "transpose", "reshape", "matmul"]))
        shape = x.type.shape
        if kind == "unary":
            values.append(b.op(draw(st.sampled_from(UNARY)), x))
        elif kind == "binary":
            same = [v for v in values if v.type == x.type]
            values.append(b.op(draw(st.sampled_from(BINARY)), x, draw(st.sampled_from(same))))
        elif kind == "constant":
            fill = draw(st.sampled_from(["zeros", "ones", "random"]))
            array = {"zeros": np.zeros(shape), "ones": np.ones(shape), "random": rng.standard_normal(shape)}[fill]
            c = b.constant(array.astype(np.float32))
            op = draw(st.sampled_from(BINARY + ["graph.div"] * (fill == "ones")))
            values.append(b.op(op, c, x) if draw(st.booleans()) else b.op(op, x, c))
        elif kind == "transpose" and len(shape) == 2:
            values.append(b.op("graph.transpose", x, perm=[1, 0]))
        elif kind == "reshape":
            values.append(b.op("graph.reshape", x, shape=list(reversed(shape))))
        elif kind == "matmul":
            partners = [v for v in values if v.type.rank == 2 and v.type.shape[0] == shape[-1]]
            if partners and len(shape) == 2:
                values.append(b.op("graph.matmul", x, draw(st.sampled_from(partners))))
    outputs = [values[-1]] + ([values[len(values) // 2]] if len(values) > 2 else [])
    b.create("func.return", outputs, result_types=[])
    sync_function_type(fn)
    module = Module()
    module.body.append(fn)
    inputs = [rng.standard_normal((rows, cols)).astype(np.float32) for _ in range(n_inputs)]
    return module, inputs

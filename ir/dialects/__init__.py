"""The dialects lutc defines; importing this package registers all their ops."""

from lutc.ir.dialects import builtin, graph  # noqa: F401
from lutc.ir.dialects import graph_elementwise, graph_nn, graph_reduce, graph_tensor  # noqa: F401  (more graph ops)
from lutc.ir.dialects import graph_fused, lut  # noqa: F401  (fusion groups; table-lookup GEMM)

"""The dialects lutc defines; importing this package registers all their ops."""

from lutc.ir.dialects import builtin, graph  # noqa: F401

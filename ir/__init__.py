"""lutc's IR: an MLIR-style core (ops, regions, blocks, SSA values), types, attributes,
the generic text format, op definitions per dialect, the verifier and the interpreter."""

from lutc.ir import dialects  # noqa: F401  (registers the ops)
from lutc.ir.attributes import *  # noqa: F401,F403
from lutc.ir.builder import Builder, infer_result_types
from lutc.ir.core import (
    Block,
    BlockArgument,
    Module,
    OpResult,
    Operation,
    Region,
    Value,
    function_body,
    function_return,
    make_function,
    sync_function_type,
)
from lutc.ir.interpreter import Interpreter, run
from lutc.ir.opdef import OPS, Attr, Dialect, OpDef, Trait, impl, lookup
from lutc.ir.parser import parse
from lutc.ir.printer import print_module, print_op
from lutc.ir.types import ElementType, FunctionType, TensorType, element_type, tensor
from lutc.ir.verifier import collect_errors, verify

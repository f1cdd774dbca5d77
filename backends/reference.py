"""The reference target: runs the module in lutc's NumPy interpreter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from lutc.ir.core import Module, function_body
from lutc.ir.interpreter import Interpreter, input_names, output_names


@dataclass
class ReferenceModel:
    module: Module
    function: str | None = None

    @property
    def input_names(self) -> list[str]:
        return input_names(self.module.function(self.function))

    @property
    def input_types(self) -> list:
        return [a.type for a in function_body(self.module.function(self.function)).args]

    @property
    def output_names(self) -> list[str]:
        return output_names(self.module.function(self.function))

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
        return Interpreter(self.module).run(inputs, self.function)

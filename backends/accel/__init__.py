"""The simulated LUT accelerator: configs, ISA, programs, simulator, reports.

    from lutc.backends.accel import load_config, assemble_file, Simulator
    config = load_config("examples/accel/edge.toml")
    program = assemble_file("gemv.s", config)          # or ProgramBuilder(...).build()
    result = Simulator(config).run(program, {"x": x})
    print(result.report.to_text()); result.outputs["y"]

docs/isa.md describes the instruction set, docs/simulator.md the timing model and report.
"""

from lutc.backends.accel.assembler import (
    assemble, assemble_file, disassemble, disassemble_instructions, format_instruction, parse_instruction,
)
from lutc.backends.accel.config import AccelConfig, load_config
from lutc.backends.accel.isa import (
    ISA_VERSION, Bcast, DType, Finish, Instruction, Load, LutBuild, LutMma, Mma, Opcode, Operand, Queue, Red,
    RedFunc, Space, Store, Sync, Vec, VecFunc, acc, decode, decode_stream, encode, encode_stream, sp,
)
from lutc.backends.accel.lut import codes_from_planes, pack_weight_planes, table_block_layout
from lutc.backends.accel.program import DramTensor, Program, ProgramBuilder, load_program, validate_program
from lutc.backends.accel.report import SimReport
from lutc.backends.accel.simulator import SimResult, Simulator

__all__ = [
    "AccelConfig", "load_config",
    "ISA_VERSION", "Bcast", "DType", "Opcode", "Operand", "Queue", "Space", "VecFunc", "RedFunc", "sp", "acc",
    "Instruction", "Load", "Store", "LutBuild", "LutMma", "Mma", "Vec", "Red", "Sync", "Finish",
    "encode", "decode", "encode_stream", "decode_stream",
    "assemble", "assemble_file", "disassemble", "disassemble_instructions", "format_instruction", "parse_instruction",
    "DramTensor", "Program", "ProgramBuilder", "load_program", "validate_program",
    "pack_weight_planes", "codes_from_planes", "table_block_layout",
    "Simulator", "SimResult", "SimReport",
]

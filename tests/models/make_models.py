"""Regenerate the small test models in tests/models/onnx/ (run by hand; needs torch and transformers).

    .venv/bin/pip install torch==2.13.0 transformers      # no torchvision: it is broken with that torch
    .venv/bin/python tests/models/make_models.py           # all models
    .venv/bin/python tests/models/make_models.py resnet18  # only names containing "resnet18"

Every model is exported with fixed seeds and static shapes, and saved as one self-contained
.onnx file (no external data) next to `<name>.npz`, which holds the reference inputs
(`input:<name>`) and the outputs onnxruntime computed for them (`output:<name>`).
docs/models.md lists the models. The tests (tests/models/test_onnx_models.py) run onnxruntime
live as well; the saved outputs let a reader check a model without torch or onnxruntime.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

OUT_DIR = Path(__file__).resolve().parent / "onnx"
SEQ_LEN = 8  # tokens per sequence for the language models
VOCAB = 128


# -- exporting and references ---------------------------------------------------------------


def strip_metadata(proto: onnx.ModelProto) -> None:
    """Drop per-node stack traces and doc strings (the dynamo exporter's make up a third of a file)."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    proto.graph.doc_string = ""


def export(
    model: nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    *,
    dynamo: bool,
    keep_batch_norm: bool = False,
) -> None:
    """Export `model` with the dynamo (torch.export) or the legacy TorchScript exporter into one file.

    Both exporters fold BatchNorm into the preceding convolution; `keep_batch_norm` (dynamo only)
    skips the exporter's optimizer, which does that fusion, and only folds constants.
    """
    model.eval()
    names = dict(input_names=input_names, output_names=output_names)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        if dynamo:
            torch.onnx.export(model, args, str(tmp_path), **names, dynamo=True, external_data=False, optimize=not keep_batch_norm)
        else:
            # Opset 18: the newest the TorchScript exporter supports well; the dynamo exporter picks 20.
            torch.onnx.export(model, args, str(tmp_path), **names, dynamo=False, opset_version=18)
        proto = onnx.load(str(tmp_path))  # pulls in any external data
    if keep_batch_norm:
        import onnx_ir
        import onnxscript.optimizer

        graph = onnx_ir.from_proto(proto)
        onnxscript.optimizer.fold_constants(graph)
        onnxscript.optimizer.remove_unused_nodes(graph)
        proto = onnx_ir.to_proto(graph)
    strip_metadata(proto)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def ort_session(path: Path) -> ort.InferenceSession:
    """An onnxruntime session that computes what the model says, in float32.

    By default ORT fuses DequantizeLinear -> MatMul into MatMulNBits with accuracy_level 4,
    which quantizes the activations to int8 (about 1% error on the QDQ models); level 0 keeps
    float32 activations. tests/models/test_onnx_models.py uses the same options.
    """
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def save_reference(path: Path, inputs: dict[str, np.ndarray]) -> None:
    """Run onnxruntime on `inputs` and save inputs and outputs in `<model>.npz`."""
    session = ort_session(path)
    output_names = [o.name for o in session.get_outputs()]
    outputs = session.run(output_names, inputs)
    arrays = {f"input:{k}": v for k, v in inputs.items()}
    arrays.update({f"output:{k}": v for k, v in zip(output_names, outputs)})
    np.savez(path.with_suffix(".npz"), **arrays)


# -- HuggingFace transformers, tiny random configs ------------------------------------------


class LogitsOnly(nn.Module):
    """A causal LM returning only its logits; the all-ones attention mask keeps transformers off
    its packed-sequence detection (aten::diff), which the TorchScript exporter cannot export."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False).logits


class BertOutputs(nn.Module):
    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state, out.pooler_output


def tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,  # grouped-query attention, as LLaMA 2/3
        max_position_embeddings=64, use_cache=False, attn_implementation="eager",
    )
    return LogitsOnly(LlamaForCausalLM(config).eval())


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4, use_cache=False, attn_implementation="eager")
    return LogitsOnly(GPT2LMHeadModel(config).eval())


def tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, type_vocab_size=2, attn_implementation="eager",
    )
    return BertOutputs(BertModel(config, add_pooling_layer=True).eval())


def token_ids(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=(1, SEQ_LEN), dtype=np.int64)


# -- CNNs written in torch.nn (torchvision is unusable with this torch) ----------------------


def randomize_batch_norms(model: nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, so that an importer
    that drops or mis-orders them produces visibly wrong numbers."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


class BasicBlock(nn.Module):
    """ResNet's two-3x3-conv residual block, with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 topology (7x7/2 stem, 3x3/2 max pool, four stages of two basic
    blocks, global average pool, fc) at 1/16 of its channel width."""

    def __init__(self, width: int = 4, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn_relu6(cin, hidden, 1, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 topology (the 7-row inverted-residual table, 17 blocks) with a
    width multiplier of 0.2 applied to every layer, the last 1x1 conv included."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, width_mult: float = 0.2, num_classes: int = 10):
        super().__init__()

        def channels(c: float) -> int:  # torchvision's _make_divisible(c, 8) at this scale, floored at 8
            return max(8, int(c * width_mult + 4) // 8 * 8)

        cin = channels(32)
        features = [conv_bn_relu6(3, cin, 3, 2)]
        for expand, c, n, s in self.SETTINGS:
            cout = channels(c)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, expand))
                cin = cout
        last = channels(1280)
        features.append(conv_bn_relu6(cin, last, 1, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 32, 32)).astype(np.float32)


# -- the model list ---------------------------------------------------------------------------


def make_transformer(name: str, build: Callable[[], nn.Module], inputs: dict[str, np.ndarray], outputs: list[str]) -> None:
    """Export one HuggingFace model with both exporters: `<name>_dynamo.onnx` and `<name>_torchscript.onnx`."""
    model = build()
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    for dynamo in (True, False):
        path = OUT_DIR / f"{name}_{'dynamo' if dynamo else 'torchscript'}.onnx"
        export(model, args, path, list(inputs), outputs, dynamo=dynamo)
        save_reference(path, inputs)


def make_cnn(name: str, model: nn.Module, seed: int, *, torchscript: bool) -> None:
    """`<name>_dynamo.onnx` (and `<name>_torchscript.onnx`). The dynamo export of ResNet-18 keeps
    its BatchNormalization nodes, so that one model has them."""
    randomize_batch_norms(model, seed)
    inputs = {"input": image(seed)}
    args = (torch.from_numpy(inputs["input"]),)
    for dynamo in (True, False) if torchscript else (True,):
        path = OUT_DIR / f"{name}_{'dynamo' if dynamo else 'torchscript'}.onnx"
        export(model, args, path, ["input"], ["logits"], dynamo=dynamo, keep_batch_norm=dynamo and name == "resnet18")
        save_reference(path, inputs)


def make_quantized_llama(source: Path, *, qdq: bool, symmetric: bool) -> None:
    """4-bit, block-32 round-to-nearest weight quantization of every MatMul with constant weights,
    by onnxruntime's MatMulNBitsQuantizer: `com.microsoft.MatMulNBits` (QOperator) or opset-21
    blocked `DequantizeLinear` (uint4 with zero points, or int4 when symmetric) -> `MatMul` (QDQ)."""
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    proto = onnx.load(str(source))
    if qdq:  # blocked int4 DequantizeLinear needs opset 21
        proto = onnx.version_converter.convert_version(proto, 21)
    quantizer = MatMulNBitsQuantizer(
        proto, bits=4, block_size=32, is_symmetric=symmetric, accuracy_level=None,  # fp32 math: exact dequantize semantics
        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
    )
    quantizer.process()
    form = "qdq" if qdq else "matmulnbits"
    path = OUT_DIR / f"llama_q4_{form}{'_sym' if symmetric else ''}.onnx"
    quantized = quantizer.model.model
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(path))
    save_reference(path, {"input_ids": token_ids(10)})


def main(selected: list[str]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    bert_mask = np.ones((1, SEQ_LEN), np.int64)
    bert_mask[0, -2:] = 0  # two padding tokens, so the mask path changes the result
    jobs: dict[str, Callable[[], None]] = {
        "llama": lambda: make_transformer("llama", tiny_llama, {"input_ids": token_ids(10)}, ["logits"]),
        "gpt2": lambda: make_transformer("gpt2", tiny_gpt2, {"input_ids": token_ids(11)}, ["logits"]),
        "bert": lambda: make_transformer(
            "bert", tiny_bert, {"input_ids": token_ids(12), "attention_mask": bert_mask}, ["last_hidden_state", "pooler_output"]
        ),
        "resnet18": lambda: (torch.manual_seed(3), make_cnn("resnet18", ResNet18(), 3, torchscript=True)),
        "mobilenetv2": lambda: (torch.manual_seed(4), make_cnn("mobilenetv2", MobileNetV2(), 4, torchscript=False)),
        "llama_q4": lambda: [
            make_quantized_llama(OUT_DIR / "llama_dynamo.onnx", qdq=qdq, symmetric=sym) for qdq in (False, True) for sym in (False, True)
        ],
    }
    for name, job in jobs.items():
        if not selected or any(s in name for s in selected):
            print(f"making {name}", flush=True)
            job()
    for path in sorted(OUT_DIR.glob("*.onnx")):
        print(f"{path.name:40s} {path.stat().st_size / 1024:7.1f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])

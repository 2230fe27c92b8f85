"""The transformer family's served artifact: ONNX (float32 export, int8 dynamic quantization
when it costs at most ``int8_max_drop`` validation accuracy) and the encoder's tokenizer.

The graph ends in a sigmoid, so ONNX Runtime serves P(positive) directly
(`airparadis.formats.onnx`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from airparadis.bundle import BundleInfo, write_info
from airparadis.formats.onnx import ONNX_FILE, TOKENIZER_FILE
from airparadis.metrics import accuracy

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class Probability:
    """Wraps the module so the exported graph ends in a sigmoid: output is P(positive)."""

    @staticmethod
    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        import torch

        class WithSigmoid(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(
                self, input_ids: torch.Tensor, attention_mask: torch.Tensor
            ) -> torch.Tensor:
                return torch.sigmoid(self.inner(input_ids, attention_mask))

        return WithSigmoid().eval()


def export_onnx(module: torch.nn.Module, path: Path) -> None:
    """Export on the CPU in float32 with dynamic batch and sequence axes (opset 17).

    The encoder is switched to eager attention first: its plain MatMul/Softmax graph runs
    faster in ONNX Runtime on a CPU than the export of SDPA attention, at the same accuracy.
    """
    import torch

    module = module.to("cpu").float().eval()
    encoder = getattr(module, "encoder", None)
    if encoder is not None and hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("eager")
    ids = torch.tensor([[101, 2204, 3462, 102], [101, 2919, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    torch.onnx.export(
        Probability.wrap(module),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["p_positive"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "p_positive": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime dynamic quantization: int8 weights of MatMul/Gemm, activations at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def save_bundle(
    module: torch.nn.Module,
    tokenizer_path: Path,
    info: BundleInfo,
    directory: Path,
    check: tuple[list[str], np.ndarray] | None,
) -> None:
    """ONNX fp32, then int8 unless it loses more than ``int8_max_drop`` accuracy on the
    `check` rows (validation), at the model's threshold; then the tokenizer and bundle.json."""
    from airparadis.formats.onnx import ONNXClassifier

    directory.mkdir(parents=True, exist_ok=True)
    params = info.params
    export: dict[str, Any]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(module, fp32)
        chosen, export = fp32, {"precision": "fp32"}
        if params["quantization"] == "int8":
            int8 = Path(tmp) / "int8.onnx"
            quantize_int8(fp32, int8)
            export = {"precision": "int8"}
            chosen = int8
            if check is not None:
                texts, labels = check
                scores = {
                    name: accuracy(
                        labels,
                        ONNXClassifier(path, tokenizer_path, info).predict_proba(texts),
                        info.threshold,
                    )
                    for name, path in (("fp32", fp32), ("int8", int8))
                }
                drop = scores["fp32"] - scores["int8"]
                if drop > float(params["int8_max_drop"]):
                    logger.warning("int8 loses %.4f validation accuracy: shipping fp32", drop)
                    chosen, export = fp32, {"precision": "fp32"}
                export.update({f"check_accuracy_{k}": f"{v:.4f}" for k, v in scores.items()})
        shutil.copyfile(chosen, directory / ONNX_FILE)
    shutil.copyfile(tokenizer_path, directory / TOKENIZER_FILE)
    info.params = {**params, **{f"export_{k}": v for k, v in export.items()}}
    write_info(directory, info)

"""EfficientNet-Lite0 quantized to 8 bits: the graph bogv runs.

Why: on CPU the FP32 graph costs ~4.7-5.2 ms per 224x224 image on one core; the 8-bit graph
(u8 activations, per-channel s8 weights, ONNX QOperator ops that onnxruntime runs on its
integer kernels) costs ~2.2-2.7 ms, with descriptors at cosine 0.997 (mean; 0.985 min) to the
FP32 ones on 1,161 dev images not used for calibration. ``bench/quality/quality.py`` moved by at
most 0.002 recall@1 (README).

How, and what was measured on the way:

- Static quantization with activation ranges calibrated once on 300 dev images (min/max) and
  shipped as ``int8_ranges.json`` (``tools/int8_ranges.py`` regenerates it). Quantizing on a
  user's machine then needs no images and no calibration run, takes under a second, and
  gives the same graph everywhere, so the model id keeps its meaning.
- The stem and the first two blocks stay in float. They see the image at 112x112 through
  ReLU6 outputs that use a small part of [0, 6]; quantized, they alone dropped the mean
  cosine to 0.98 (top-1 neighbours among dev images changed for one image in five). In float
  they cost ~0.3 ms.
- The pooling and classifier path to ``logits`` stays in float: only the weight check uses it.
- Tried and dropped: percentile and entropy calibration (worse than min/max here), s8
  activations (~2x slower), 7-bit weights (``reduce_range``: cosine 0.990), u8 weights in QDQ
  form (no fused kernel: 4x slower than FP32), keeping the head in float (no gain).

Not the default: the figures above are for the 1280 GeM channels. The stored, projected
descriptor sits at cosine 0.991 mean / 0.955 min to FP32's over the 1461 dev images, under
the bound bogv keeps (0.995 / 0.98). And u8 x s8 products are exact only on x86 CPUs with
VNNI (Cascade Lake / Zen 4 and later); AVX2/AVX-512 CPUs without it saturate int16 sums and
drift further (README, "CPUs"). So it runs only when ``PRECISION=int8`` asks for it, on
VNNI (``bogv.model.cpu``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import onnx

__all__ = ["FLOAT_NODES", "RANGES", "RECIPE", "quantize", "recipe"]

RANGES = Path(__file__).with_name("int8_ranges.json")
"""Calibrated activation ranges, in onnxruntime's calibration-cache format."""

FLOAT_NODES = (
    "_conv_stem", "_blocks.0._depthwise_conv", "_blocks.0._project_conv",
    "_blocks.1._expand_conv", "_blocks.1._depthwise_conv", "_blocks.1._project_conv",
    "_pool", "_flatten", "_fc",
)
"""Graph nodes (``bogv.model.graph`` names them) that keep float weights and activations."""

_SETTINGS = "qoperator-u8-s8-perchannel-minmax"


def recipe(ranges: Path = RANGES) -> str:
    """Name of a quantization: changes with the settings, the float layers or the ranges."""
    parts = [_SETTINGS.encode(), ",".join(FLOAT_NODES).encode(), ranges.read_bytes()]
    return hashlib.sha256(b"|".join(parts)).hexdigest()[:10]


RECIPE = recipe()
"""Part of the cached graph's file name and of the model id."""


def quantize(model: onnx.ModelProto, out: Path, *, reduce_range: bool = False) -> None:
    """Write the 8-bit version of the FP32 ``model`` to ``out``; deterministic, offline.

    ``reduce_range`` (7-bit weights, which cannot saturate AVX2's int16 sums) is not what
    bogv runs; ``bench/cpu/cpu_paths.py`` measures it against the shipped recipe."""
    # Imported here: only a first start builds the graph, and the import costs every start ~40 ms.
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it warns on the root logger about optional pre-processing
    try:
        quantize_static(
            model, out, calibration_cache_path=RANGES, calibrate_method=CalibrationMethod.MinMax,
            quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
            nodes_to_exclude=list(FLOAT_NODES))
    finally:
        root.setLevel(level)

"""Build EfficientNet-Lite0 as an ONNX graph from its state dict, batch norm folded in.

Architecture from the reference implementation (efficientnet-lite-pytorch 0.1.0): a 3x3/2 stem,
seven MBConv stages without squeeze-excite, a 1x1 head to 1280 channels, ReLU6 everywhere.
Convolutions use TensorFlow "SAME" padding (the odd pixel at bottom/right), which ONNX spells
``auto_pad="SAME_UPPER"``; symmetric padding would shift every feature by half a pixel.
The graph accepts any input height and width. Nodes are named after the layer they compute
(``_blocks.3._expand_conv``), so ``bogv.model.int8`` can keep chosen layers in float.

Outputs:
  ``fmap``   (N, 1280, h, w) the head's activations, for pooling into retrieval descriptors;
  ``logits`` (N, 1000) ImageNet logits, used to prove the weights were read correctly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["BN_EPS", "build_graph"]

BN_EPS = 1e-3
OPSET = 17


class _Stage(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    out: int


# efficientnet_lite_builder.py, lite0 (width and depth 1.0): r, k, s, e, o
_STAGES = (
    _Stage(1, 3, 1, 1, 16),
    _Stage(2, 3, 2, 6, 24),
    _Stage(2, 5, 2, 6, 40),
    _Stage(3, 3, 2, 6, 80),
    _Stage(3, 5, 1, 6, 112),
    _Stage(4, 5, 2, 6, 192),
    _Stage(1, 3, 1, 6, 320),
)


class _Builder:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0
        self.zero = self.const("relu6_min", np.array(0.0, np.float32))
        self.six = self.const("relu6_max", np.array(6.0, np.float32))

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, group: int = 1,
                relu6: bool = True) -> str:
        """Conv followed by batch norm, folded into one Conv with bias."""
        kernel = self.w[f"{conv}.weight"]
        scale = self.w[f"{bn}.weight"] / np.sqrt(self.w[f"{bn}.running_var"] + BN_EPS)
        weight = (kernel * scale[:, None, None, None]).astype(np.float32)
        bias = (self.w[f"{bn}.bias"] - self.w[f"{bn}.running_mean"] * scale).astype(np.float32)
        w_name = self.const(f"{conv}.w", weight)
        b_name = self.const(f"{conv}.b", bias)
        y = self.fresh(conv)
        self.nodes.append(helper.make_node(
            "Conv", [x, w_name, b_name], [y], name=conv, auto_pad="SAME_UPPER", group=group,
            strides=[stride, stride], kernel_shape=list(kernel.shape[2:])))
        if not relu6:
            return y
        z = self.fresh(f"{conv}.relu6")
        self.nodes.append(helper.make_node("Clip", [y, self.zero, self.six], [z],
                                           name=f"{conv}.relu6"))
        return z

    def block(self, x: str, idx: int, in_ch: int, out_ch: int, stride: int, expand: int) -> str:
        p = f"_blocks.{idx}"
        y = x
        if expand != 1:
            y = self.conv_bn(y, f"{p}._expand_conv", f"{p}._bn0")
        y = self.conv_bn(y, f"{p}._depthwise_conv", f"{p}._bn1", stride=stride,
                         group=in_ch * expand)
        y = self.conv_bn(y, f"{p}._project_conv", f"{p}._bn2", relu6=False)
        if stride == 1 and in_ch == out_ch:
            s = self.fresh(f"{p}.skip")
            self.nodes.append(helper.make_node("Add", [y, x], [s], name=f"{p}.skip"))
            y = s
        return y


def build_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Return the validated ONNX model for EfficientNet-Lite0 with these weights."""
    b = _Builder(weights)
    x = b.conv_bn("image", "_conv_stem", "_bn0", stride=2)
    in_ch, idx = 32, 0
    for stage in _STAGES:
        for r in range(stage.repeats):
            x = b.block(x, idx, in_ch, stage.out, stage.stride if r == 0 else 1, stage.expand)
            in_ch, idx = stage.out, idx + 1
    fmap = b.conv_bn(x, "_conv_head", "_bn1")
    b.nodes.append(helper.make_node("Identity", [fmap], ["fmap"], name="_fmap"))

    pooled = b.fresh("pool")
    flat = b.fresh("flat")
    b.nodes.append(helper.make_node("GlobalAveragePool", ["fmap"], [pooled], name="_pool"))
    b.nodes.append(helper.make_node("Flatten", [pooled], [flat], name="_flatten", axis=1))
    fc_w = b.const("_fc.w", weights["_fc.weight"].T.astype(np.float32).copy())
    fc_b = b.const("_fc.b", weights["_fc.bias"].astype(np.float32))
    b.nodes.append(helper.make_node("Gemm", [flat, fc_w, fc_b], ["logits"], name="_fc"))

    graph = helper.make_graph(
        b.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("fmap", TensorProto.FLOAT, ["n", 1280, "fh", "fw"]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 1000])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="bogv")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model

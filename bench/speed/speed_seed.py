"""The seed service's ingest pipeline, rebuilt as the baseline bench/speed/speed.py compares with.

The seed decoded every photo at full size with OpenCV, resized it to 224x224, ran a torch
ResNet-50 on it one image at a time, and inserted one row per image into Milvus. Its
pretrained weights cannot be downloaded here, so the network has the same architecture (and
so the same FLOPs) with random weights: speed does not depend on the weights' values. torch
and OpenCV come from the ``bench`` extra only; bogv itself never imports them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning, as bogv's ONNX Runtime threads do: on a
# shared 2-core box spinning threads made each ResNet-50 pass 5-10x slower (0.7-1.2 s
# instead of 70-180 ms), which would flatter bogv. Read when torch loads its OpenMP.
if "torch" in sys.modules:
    raise RuntimeError("import speed_seed before torch: OMP_WAIT_POLICY must be set first")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2
import numpy as np
import torch
from pymilvus import DataType, MilvusClient
from torch import nn

__all__ = ["SeedPipeline"]

_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.down(x))


def resnet50() -> nn.Module:
    """torchvision's ResNet-50 (v1.5) up to the pooled 2048-d feature, random weights."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                               nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(_Bottleneck(cin, mid, stride if i == 0 else 1))
            cin = mid * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers).eval()


class SeedPipeline:
    """One image at a time: cv2 full decode, resize, ResNet-50 forward, one insert."""

    DIM = 2048

    def __init__(self, db: Path) -> None:
        torch.manual_seed(0)
        self.model = resnet50()
        self.client = MilvusClient(str(db))
        schema = self.client.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("key", DataType.VARCHAR, max_length=64)
        schema.add_field("filepath", DataType.VARCHAR, max_length=512)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.DIM)
        index = self.client.prepare_index_params()
        index.add_index("embedding", index_type="IVF_FLAT", metric_type="IP",
                        params={"nlist": 1024})
        self.client.create_collection("seed", schema=schema, index_params=index)
        with torch.inference_mode():
            self.model(torch.zeros(1, 3, 224, 224))  # first call allocates; not timed

    def close(self) -> None:
        self.client.close()

    def embed(self, path: Path) -> np.ndarray:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(cv2.resize(bgr, (224, 224)), cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(((rgb - _MEAN) / _STD).transpose(2, 0, 1)[None].copy())
        with torch.inference_mode():
            vec = self.model(x.float())[0].numpy()
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def ingest(self, paths: Sequence[Path]) -> float:
        """Seconds to index ``paths``, the seed's way."""
        start = time.perf_counter()
        for path in paths:
            vec = self.embed(path)
            self.client.insert("seed", [{"key": path.stem, "filepath": str(path),
                                         "embedding": vec.tolist()}])
        return time.perf_counter() - start

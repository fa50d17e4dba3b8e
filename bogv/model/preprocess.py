"""Pure image-to-tensor transforms for EfficientNet-Lite0.

The network was trained on ``(x - 127) / 128`` RGB pixels. Two geometries:
``classify_tensor`` reproduces training (shorter side 256, centre crop 224) and is what the
weight-check test uses; ``embed_tensor`` squeezes the *whole* frame to 224x224 for retrieval,
because a centre crop throws away up to half of a wide photo, and the edges are exactly what
tells two crops or two wallpapers apart.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["SIZE", "classify_tensor", "embed_tensor", "normalise"]

SIZE = 224
_MEAN, _STD = 127.0, 128.0


def normalise(img: Image.Image) -> npt.NDArray[np.float32]:
    """RGB image to a CHW float32 array in the network's input range."""
    arr = np.asarray(img, dtype=np.float32)
    return ((arr - _MEAN) / _STD).transpose(2, 0, 1)


def embed_tensor(img: Image.Image, size: int = SIZE) -> npt.NDArray[np.float32]:
    """Whole frame resized to ``size`` x ``size`` (antialiased), CHW."""
    return normalise(img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0))


def classify_tensor(img: Image.Image, size: int = SIZE) -> npt.NDArray[np.float32]:
    """Shorter side to size/0.875, centre crop ``size``: the training-time transform."""
    short = round(size / 0.875)
    w, h = img.size
    scale = short / min(w, h)
    img = img.resize((max(round(w * scale), size), max(round(h * scale), size)),
                     Image.Resampling.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return normalise(img.crop((left, top, left + size, top + size)))


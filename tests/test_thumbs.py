"""Thumbnails are made for every imported image: cheap, but still a faithful small picture."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bogv.thumbs import SIDE, make_thumbnail


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def test_the_longest_side_becomes_side_and_the_shape_is_kept() -> None:
    thumb = _open(make_thumbnail(Image.new("RGB", (3000, 1000), "orange")))
    assert thumb.size == (SIDE, 85)
    assert _open(make_thumbnail(Image.new("RGB", (100, 40), "orange"))).size == (100, 40)


def test_fine_detail_averages_out_instead_of_aliasing() -> None:
    """Black and white pixel noise shrunk 16x must turn an even grey: a plain bilinear step
    alone samples a few pixels per output pixel and keeps the noise."""
    noise = np.random.default_rng(0).integers(0, 2, (4096, 4096, 1), np.uint8) * 255
    thumb = make_thumbnail(Image.fromarray(np.repeat(noise, 3, axis=2)))
    grey = np.asarray(_open(thumb), np.float32)
    assert abs(grey.mean() - 127.5) < 10 and grey.std() < 25

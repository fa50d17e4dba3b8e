"""The edits bench/quality.py applies to query images, and the distractor variants it indexes.

Most edits come from albumentations (a maintained augmentation library) so the benchmark
does not grade bogv on edits bogv's author wrote; the ones it has no transform for (a
caption banner, a screenshot canvas, a squash to another aspect ratio) are small Pillow
functions. Every edit is deterministic given its ``random.Random``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["EDITS", "distractor_variants"]

Edit = Callable[[Image.Image, random.Random], Image.Image]

_WORDS = ("when the weekend finally arrives", "nobody:", "me at 3 am", "this is fine",
          "look what I found", "before and after", "guess where", "not again", "so true",
          "the view from here", "best day ever", "can't stop looking")


def _albu(transform: A.BasicTransform) -> Edit:
    def edit(img: Image.Image, rng: random.Random) -> Image.Image:
        out = A.Compose([transform], seed=rng.randrange(2**31))(image=np.asarray(img))
        return Image.fromarray(out["image"])
    return edit


def _scaled(img: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _crop(img: Image.Image, area: float, rng: random.Random, where: str) -> Image.Image:
    """Keep ``area`` of the pixels, same aspect ratio, at the centre, a corner or anywhere."""
    w, h = round(img.width * math.sqrt(area)), round(img.height * math.sqrt(area))
    if where == "centre":
        x, y = (img.width - w) // 2, (img.height - h) // 2
    elif where == "corner":
        x = rng.choice((0, img.width - w))
        y = rng.choice((0, img.height - h))
    else:
        x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    return img.crop((x, y, x + w, y + h))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def caption(img: Image.Image, rng: random.Random) -> Image.Image:
    """A meme-style banner with text across the top or bottom, ~15% of the area."""
    out = img.copy()
    band = max(8, round(img.height * 0.15))
    top = rng.random() < 0.5
    y0 = 0 if top else img.height - band
    draw = ImageDraw.Draw(out)
    fill = rng.choice(((0, 0, 0), (255, 255, 255), (32, 32, 32)))
    draw.rectangle((0, y0, img.width, y0 + band), fill=fill)
    text = rng.choice(_WORDS).upper()
    font = _font(round(band * 0.6))
    colour = (255, 255, 255) if sum(fill) < 300 else (0, 0, 0)
    draw.text((img.width // 2, y0 + band // 2), text, fill=colour, font=font, anchor="mm")
    return out


def screenshot(img: Image.Image, rng: random.Random) -> Image.Image:
    """The image shown inside an app window: title bar, side panel, status bar, margins."""
    canvas_w = rng.choice((1280, 1366, 1440))
    canvas_h = round(canvas_w * rng.choice((0.5625, 0.625)))
    ui = rng.choice((((240, 240, 240), (53, 132, 228)), ((36, 36, 36), (98, 160, 234)),
                     ((250, 250, 250), (0, 120, 215))))
    canvas = Image.new("RGB", (canvas_w, canvas_h), ui[0])
    draw = ImageDraw.Draw(canvas)
    bar = round(canvas_h * 0.06)
    side = round(canvas_w * rng.uniform(0.12, 0.2))
    draw.rectangle((0, 0, canvas_w, bar), fill=ui[1])
    draw.text((12, bar // 2), "Image Viewer - photo.jpg", fill=(255, 255, 255),
              font=_font(bar // 2), anchor="lm")
    panel = tuple(max(0, c - 18) for c in ui[0])
    draw.rectangle((0, bar, side, canvas_h), fill=panel)
    for i in range(6):
        y = bar + 20 + i * 34
        draw.text((14, y), f"Item {i + 1}", fill=(128, 128, 128), font=_font(14))
    draw.rectangle((0, canvas_h - bar // 2, canvas_w, canvas_h), fill=panel)
    box_w, box_h = canvas_w - side - 40, canvas_h - bar - bar // 2 - 40
    scale = min(box_w / img.width, box_h / img.height) * rng.uniform(0.8, 1.0)
    shown = _scaled(img, scale)
    x = side + 20 + (box_w - shown.width) // 2
    y = bar + 20 + (box_h - shown.height) // 2
    canvas.paste(shown, (x, y))
    return canvas


def squash(img: Image.Image, rng: random.Random) -> Image.Image:
    """Aspect ratio changed by 1.3x (height squeezed, or width)."""
    if rng.random() < 0.5:
        return img.resize((img.width, max(1, round(img.height / 1.3))), Image.Resampling.LANCZOS)
    return img.resize((max(1, round(img.width / 1.3)), img.height), Image.Resampling.LANCZOS)


def blur(img: Image.Image, rng: random.Random) -> Image.Image:
    """Gaussian blur whose radius grows with the image, so it is visible at any size."""
    sigma = max(1.5, max(img.size) / 250)
    return _albu(A.GaussianBlur(blur_limit=0, sigma_limit=(sigma, sigma), p=1))(img, rng)


def combo(img: Image.Image, rng: random.Random) -> Image.Image:
    """Crop to 80% of the area, JPEG 50, downscale to 50%, brighter."""
    out = _crop(img, 0.8, rng, "random")
    out = _albu(A.ImageCompression(quality_range=(50, 50), p=1))(out, rng)
    out = _scaled(out, 0.5)
    return _albu(A.ColorJitter(brightness=(1.25, 1.25), contrast=(1, 1), saturation=(1, 1),
                               hue=(0, 0), p=1))(out, rng)


EDITS: dict[str, Edit] = {
    "jpeg q30": _albu(A.ImageCompression(quality_range=(30, 30), p=1)),
    "downscale 30%": lambda img, rng: _scaled(img, 0.3),
    "centre crop 70%": lambda img, rng: _crop(img, 0.7, rng, "centre"),
    "corner crop 50%": lambda img, rng: _crop(img, 0.5, rng, "corner"),
    "rotate 10°": _albu(A.Rotate(limit=(10, 10), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1)),
    "flip": _albu(A.HorizontalFlip(p=1)),
    "greyscale": _albu(A.ToGray(p=1)),
    "brightness x1.4": _albu(A.ColorJitter(brightness=(1.4, 1.4), contrast=(1, 1),
                                           saturation=(1, 1), hue=(0, 0), p=1)),
    "contrast x0.6": _albu(A.ColorJitter(brightness=(1, 1), contrast=(0.6, 0.6),
                                         saturation=(1, 1), hue=(0, 0), p=1)),
    "gaussian blur": blur,
    "caption 15%": caption,
    "screenshot": screenshot,
    "squash 1.3x": squash,
    "combo": combo,
}
"""Query edits, by the names the benchmark table uses."""

_HUE = _albu(A.HueSaturationValue(hue_shift_limit=(-25, 25), sat_shift_limit=(-40, 40),
                                  val_shift_limit=(-25, 25), p=1))


def distractor_variants(img: Image.Image, rng: random.Random) -> list[Image.Image]:
    """Four look-alikes of a distractor: two crops, a colour shift, a shifted crop."""
    return [
        _crop(img, rng.uniform(0.5, 0.85), rng, "random"),
        _crop(img, rng.uniform(0.3, 0.6), rng, "random"),
        _HUE(img, rng),
        _HUE(_crop(img, rng.uniform(0.6, 0.9), rng, "random"), rng),
    ]

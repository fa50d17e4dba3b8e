"""The edits ``quality.py`` applies to query images, and the distractor variants it indexes.

Most edits come from albumentations (a maintained augmentation library) so the benchmark
does not grade bogv on edits bogv's author wrote; the ones it has no transform for (a
caption banner, a screenshot canvas, a squash to another aspect ratio) are small Pillow
functions. So are the overlays (issue 17): text, watermarks, logos, emoji, a date stamp and
an app's controls drawn *over* the picture, in Debian's DejaVu fonts (``FONT_DIR``) and
shapes drawn here. Every edit is deterministic given its ``random.Random``.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from pathlib import Path

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


# --- overlays: things drawn over the picture (issue 17) ---------------------------------

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
"""Debian's ``fonts-dejavu-core`` (and ``-extra``): the overlays' text is drawn in these,
not in Pillow's built-in font, so that captions look like the bold sans-serif of memes."""
_FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "DejaVuSerif-Bold.ttf",
          "DejaVuSans.ttf")
_MONO = "DejaVuSansMono-Bold.ttf"


def _ttf(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / name
    if not path.exists():
        raise SystemExit(f"bench/quality/quality_edits.py: the overlay edits need {path}: "
                         "apt-get install fonts-dejavu-core fonts-dejavu-extra")
    return ImageFont.truetype(str(path), max(6, size))


_CAPTIONS = ("WHEN YOU SEE IT", "NOBODY:", "ME AT 3 AM", "THIS IS FINE", "SO TRUE",
             "LOOK WHAT I FOUND", "BEFORE AND AFTER", "GUESS WHERE", "NOT AGAIN",
             "BEST DAY EVER", "CAN'T STOP LOOKING", "MONDAY MOOD", "TAG A FRIEND",
             "WAIT FOR IT", "BREAKING NEWS", "NEW ARRIVAL -30%", "FREE SHIPPING TODAY",
             "SOURCE: TRUST ME", "HOW IT STARTED", "HOW IT'S GOING", "PLOT TWIST")


def _lines(rng: random.Random) -> list[str]:
    return [rng.choice(_CAPTIONS) for _ in range(rng.randint(1, 3))]


def _text_block(draw: ImageDraw.ImageDraw, lines: list[str], font: ImageFont.FreeTypeFont,
                stroke: int) -> tuple[int, int]:
    """Width and height of centred lines drawn with ``_draw_lines``."""
    box = draw.multiline_textbbox((0, 0), "\n".join(lines), font=font, align="center",
                                  stroke_width=stroke)
    return math.ceil(box[2] - box[0]), math.ceil(box[3] - box[1])


def _fit_caption(img: Image.Image, lines: list[str], area: float, rng: random.Random
                 ) -> tuple[ImageFont.FreeTypeFont, int, tuple[int, int]]:
    """The font size whose text block covers about ``area`` of the picture (never wider
    than it), its stroke, and the block's size."""
    draw = ImageDraw.Draw(img)
    name = rng.choice(_FONTS)
    size = max(8, img.height // 10)
    for _ in range(12):  # the block's area grows with the square of the font size
        font = _ttf(name, size)
        stroke = max(1, size // 14)
        w, h = _text_block(draw, lines, font, stroke)
        scale = math.sqrt(area * img.width * img.height / max(1, w * h))
        scale = min(scale, 0.96 * img.width / max(1, w), 0.9 * img.height / max(1, h))
        new = max(6, int(size * scale))
        if abs(new - size) <= 1:
            break
        size = new
    font = _ttf(name, size)
    stroke = max(1, size // 14)
    return font, stroke, _text_block(draw, lines, font, stroke)


def _place(img: Image.Image, w: int, h: int, rng: random.Random) -> tuple[int, int]:
    """Anywhere the block fits."""
    return rng.randint(0, max(0, img.width - w)), rng.randint(0, max(0, img.height - h))


def text_light(img: Image.Image, rng: random.Random) -> Image.Image:
    """1-3 lines of white bold text with a black outline over the picture (a meme), the
    text block 10-30% of the area, anywhere."""
    out = img.convert("RGB")
    lines = _lines(rng)
    font, stroke, (w, h) = _fit_caption(out, lines, rng.uniform(0.1, 0.3), rng)
    x, y = _place(out, w, h, rng)
    ImageDraw.Draw(out).multiline_text(
        (x + w // 2, y + h // 2), "\n".join(lines), font=font, anchor="mm", align="center",
        fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0))
    return out


def text_dark(img: Image.Image, rng: random.Random) -> Image.Image:
    """1-3 lines of dark text on a light, partly see-through box over the picture, the box
    10-30% of the area, anywhere."""
    out = img.convert("RGBA")
    lines = _lines(rng)
    font, _, (w, h) = _fit_caption(out, lines, rng.uniform(0.1, 0.3) * 0.75, rng)
    pad = max(2, font.size // 3)
    x, y = _place(out, w + 2 * pad, h + 2 * pad, rng)
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rounded_rectangle((x, y, x + w + 2 * pad, y + h + 2 * pad), radius=pad,
                           fill=(250, 250, 245, rng.choice((170, 210, 255))))
    draw.multiline_text((x + pad + w // 2, y + pad + h // 2), "\n".join(lines), font=font,
                        anchor="mm", align="center",
                        fill=rng.choice(((0, 0, 0, 255), (30, 30, 90, 255), (120, 0, 0, 255))))
    return Image.alpha_composite(out, layer).convert("RGB")


def watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    """A seller's name tiled diagonally over the whole picture, 25-45% opaque."""
    out = img.convert("RGBA")
    name = rng.choice(("© shopmaster", "SAMPLE", "stockpix.example", "© J. Doe 2024",
                       "PREVIEW", "@bestdeals"))
    font = _ttf(rng.choice(_FONTS), max(8, min(out.size) // rng.randint(8, 12)))
    side = 2 * max(out.size)
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = _text_block(draw, [name], font, 0)
    alpha = round(255 * rng.uniform(0.25, 0.45))
    colour = rng.choice(((255, 255, 255), (0, 0, 0), (128, 128, 128)))
    for row, y in enumerate(range(0, side, 3 * h)):
        for x in range(-(row % 2) * w, side, int(1.6 * w)):
            draw.text((x, y), name, font=font, fill=(*colour, alpha))
    layer = layer.rotate(rng.uniform(20, 40), resample=Image.Resampling.BILINEAR)
    left, top = (side - out.width) // 2, (side - out.height) // 2
    layer = layer.crop((left, top, left + out.width, top + out.height))
    return Image.alpha_composite(out, layer).convert("RGB")


def _star(cx: float, cy: float, r: float, points: int = 5) -> list[tuple[float, float]]:
    return [(cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / points),
             cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / points))
            for i in range(2 * points)]


def _sticker(size: int, rng: random.Random) -> Image.Image:
    """A brand's logo or a shop's sticker: a coloured badge with a short word."""
    s = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(s)
    colour = rng.choice(((220, 30, 40), (20, 110, 220), (250, 190, 0), (20, 160, 90),
                         (30, 30, 30), (255, 255, 255)))
    ink = (0, 0, 0) if sum(colour) > 500 else (255, 255, 255)
    shape = rng.choice(("circle", "star", "square"))
    if shape == "circle":
        draw.ellipse((0, 0, size - 1, size - 1), fill=colour, outline=ink,
                     width=max(1, size // 25))
    elif shape == "star":
        draw.polygon(_star(size / 2, size / 2, size / 2, rng.choice((8, 12, 16))), fill=colour)
    else:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 6, fill=colour)
    word = rng.choice(("SALE", "NEW", "-50%", "HOT", "TOP", "BEST", "4K", "LIVE"))
    font = _ttf(rng.choice(_FONTS), size // 4)
    draw.text((size / 2, size / 2), word, font=font, fill=ink, anchor="mm")
    return s


def logo(img: Image.Image, rng: random.Random) -> Image.Image:
    """An opaque logo or sticker in a corner, its side 18-30% of the picture's shorter
    side."""
    out = img.convert("RGBA")
    size = max(8, round(min(out.size) * rng.uniform(0.18, 0.3)))
    margin = round(min(out.size) * rng.uniform(0.0, 0.04))
    x = rng.choice((margin, out.width - size - margin))
    y = rng.choice((margin, out.height - size - margin))
    out.alpha_composite(_sticker(size, rng), (x, y))
    return out.convert("RGB")


def _emoji(size: int, rng: random.Random) -> Image.Image:
    """An emoji drawn from shapes (no colour emoji font is assumed): a face, a heart, a
    star, a fire-like drop or a thumbs-up-like badge."""
    e = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(e)
    kind = rng.choice(("face", "face", "heart", "star", "drop"))
    w = max(1, size // 20)
    if kind == "face":
        draw.ellipse((0, 0, size - 1, size - 1), fill=(255, 204, 51), outline=(200, 120, 0),
                     width=w)
        ey, ex, er = size * 0.38, size * 0.3, size * 0.07
        for cx in (ex, size - ex):
            if rng.random() < 0.5:
                draw.ellipse((cx - er, ey - er * 1.4, cx + er, ey + er * 1.4), fill=(60, 40, 20))
            else:  # laughing: closed eyes
                draw.arc((cx - 2 * er, ey - er, cx + 2 * er, ey + 2 * er), 200, 340,
                         fill=(60, 40, 20), width=2 * w)
        mouth = (size * 0.25, size * 0.45, size * 0.75, size * 0.8)
        if rng.random() < 0.5:
            draw.chord(mouth, 0, 180, fill=(120, 30, 30))
        else:
            draw.arc(mouth, 20, 160, fill=(60, 40, 20), width=2 * w)
        if rng.random() < 0.4:  # tears of joy
            draw.ellipse((0, size * 0.45, size * 0.18, size * 0.7), fill=(80, 170, 255))
            draw.ellipse((size * 0.82, size * 0.45, size - 1, size * 0.7), fill=(80, 170, 255))
    elif kind == "heart":
        r = size / 4
        red = rng.choice(((230, 20, 60), (255, 80, 150)))
        draw.ellipse((0, size * 0.1, 2 * r, size * 0.1 + 2 * r), fill=red)
        draw.ellipse((2 * r, size * 0.1, 4 * r, size * 0.1 + 2 * r), fill=red)
        draw.polygon([(size * 0.03, size * 0.1 + r * 1.3), (size * 0.97, size * 0.1 + r * 1.3),
                      (size / 2, size * 0.95)], fill=red)
    elif kind == "star":
        draw.polygon(_star(size / 2, size / 2, size / 2), fill=(255, 210, 0),
                     outline=(230, 140, 0))
    else:
        draw.ellipse((size * 0.15, size * 0.3, size * 0.85, size - 1), fill=(255, 110, 0))
        draw.polygon([(size * 0.18, size * 0.55), (size * 0.5, 0), (size * 0.82, size * 0.55)],
                     fill=(255, 110, 0))
        draw.ellipse((size * 0.32, size * 0.55, size * 0.68, size * 0.92), fill=(255, 220, 0))
    return e


def emoji(img: Image.Image, rng: random.Random) -> Image.Image:
    """Two to six emoji, each 10-18% of the shorter side, anywhere."""
    out = img.convert("RGBA")
    for _ in range(rng.randint(2, 6)):
        size = max(8, round(min(out.size) * rng.uniform(0.1, 0.18)))
        e = _emoji(size, rng).rotate(rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC)
        out.alpha_composite(e, _place(out, size, size, rng))
    return out.convert("RGB")


def timestamp(img: Image.Image, rng: random.Random) -> Image.Image:
    """A camera's date stamp: orange digits, ~5% of the height, near a bottom corner."""
    out = img.convert("RGB")
    when = (f"{rng.randint(1998, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f" {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}")
    if rng.random() < 0.5:
        when = when.replace("-", "/")
    font = _ttf(_MONO, round(out.height * rng.uniform(0.04, 0.06)))
    draw = ImageDraw.Draw(out)
    w, h = _text_block(draw, [when], font, 1)
    m = max(2, out.height // 30)
    x = out.width - w - m if rng.random() < 0.7 else m
    draw.text((x, out.height - h - m), when, font=font,
              fill=rng.choice(((255, 140, 0), (255, 200, 40), (255, 255, 255))),
              stroke_width=1, stroke_fill=(60, 20, 0))
    return out


def app_overlay(img: Image.Image, rng: random.Random) -> Image.Image:
    """A story or video player drawn over the picture: dark see-through bars top and
    bottom with a user name, a caption and icons, and a play button in the middle."""
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    W, H = out.size
    bar = max(8, round(H * 0.1))
    draw.rectangle((0, 0, W, bar), fill=(0, 0, 0, 110))
    draw.rectangle((0, H - bar, W, H), fill=(0, 0, 0, 110))
    draw.rectangle((round(W * 0.02), round(bar * 0.1), round(W * rng.uniform(0.3, 0.9)),
                    round(bar * 0.1) + max(1, H // 150)), fill=(255, 255, 255, 230))
    font = _ttf("DejaVuSans-Bold.ttf", round(bar * 0.35))
    draw.ellipse((W * 0.02, bar * 0.3, W * 0.02 + bar * 0.6, bar * 0.9), fill=(200, 80, 160, 255))
    draw.text((W * 0.02 + bar * 0.8, bar * 0.6), rng.choice(("@traveller", "@news_daily",
              "@deals4u", "@catlover")), font=font, fill=(255, 255, 255, 255), anchor="lm")
    draw.text((W * 0.03, H - bar / 2), rng.choice(_CAPTIONS).lower(), font=font,
              fill=(255, 255, 255, 255), anchor="lm")
    for i in range(3):  # like, comment, share
        cx, cy, r = W - bar * (0.6 + 0.9 * i), H - bar / 2, bar * 0.28
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(255, 255, 255, 255),
                     width=max(1, bar // 20))
    r = min(W, H) * 0.09
    draw.ellipse((W / 2 - r, H / 2 - r, W / 2 + r, H / 2 + r), fill=(0, 0, 0, 120))
    draw.polygon([(W / 2 - r * 0.35, H / 2 - r * 0.5), (W / 2 - r * 0.35, H / 2 + r * 0.5),
                  (W / 2 + r * 0.55, H / 2)], fill=(255, 255, 255, 230))
    return Image.alpha_composite(out, layer).convert("RGB")


_OVERLAYS: tuple[Edit, ...] = (text_light, text_dark, watermark, logo, emoji, timestamp,
                               app_overlay)


def overlay_resized(img: Image.Image, rng: random.Random) -> Image.Image:
    """One of the overlays, then shrunk to 40-60% and saved as a JPEG of quality 50-75:
    a meme or watermarked copy passed around."""
    out = rng.choice(_OVERLAYS)(img, rng)
    out = _scaled(out, rng.uniform(0.4, 0.6))
    q = rng.randint(50, 75)
    return _albu(A.ImageCompression(quality_range=(q, q), p=1))(out, rng)


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
    "text over, light": text_light,
    "text over, dark": text_dark,
    "watermark tiled": watermark,
    "logo in corner": logo,
    "emoji": emoji,
    "timestamp": timestamp,
    "app overlay": app_overlay,
    "overlay+resize+jpeg": overlay_resized,
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

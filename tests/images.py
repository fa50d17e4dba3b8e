"""Real test photographs and the edits tests apply to them."""

from __future__ import annotations

import io
from pathlib import Path

import skimage.data
from PIL import Image, ImageDraw, ImageFont

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "camera", "motorcycle_left")

_SKIMAGE = Path(skimage.data.__file__).parent


def photo(name: str) -> Image.Image:
    """A real photograph shipped in scikit-image's wheel (no download), as RGB."""
    path = next(_SKIMAGE.glob(f"{name}.*"))
    with Image.open(path) as img:
        return img.convert("RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def edited_copy(img: Image.Image) -> bytes:
    """Downscaled to 40% and recompressed at JPEG quality 40."""
    small = img.resize((int(img.width * 0.4), int(img.height * 0.4)), Image.Resampling.LANCZOS)
    return encode(small, quality=40)


def captioned(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Two lines of white text with a black outline drawn over the top half of ``img`` (a
    meme), and the box they cover."""
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(10, img.height // 9))
    args = {"xy": (img.width // 2, img.height // 4), "text": "WHEN YOU SEE IT\nNOBODY:",
            "font": font, "anchor": "mm", "align": "center",
            "stroke_width": max(1, img.height // 120)}
    draw.multiline_text(**args, fill=(255, 255, 255), stroke_fill=(0, 0, 0))
    box = draw.multiline_textbbox(**args)
    return out, tuple(round(v) for v in box)  # type: ignore[return-value]


def text_over(img: Image.Image) -> Image.Image:
    """Three lines of white text with a black outline across the middle of ``img``: more
    letters than ``captioned``, over more of the picture."""
    out = img.convert("RGB")
    font = ImageFont.load_default(size=max(10, img.height // 8))
    ImageDraw.Draw(out).multiline_text(
        (img.width // 2, img.height // 2), "WHEN YOU SEE IT\nNOBODY:\nME AT 3 AM", font=font,
        anchor="mm", align="center", fill=(255, 255, 255),
        stroke_width=max(1, img.height // 100), stroke_fill=(0, 0, 0))
    return out


def write_photos(folder: Path, photos: dict[str, bytes]) -> Path:
    """Each photo as ``folder/<name>.jpg`` (the folder is created); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
    return folder

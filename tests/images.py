"""Real test photographs and the edits tests apply to them."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
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


def rotated(img: Image.Image, degrees: float = 15, trim: float = 0.1) -> Image.Image:
    """``img`` turned by ``degrees`` in its own frame (the corners it loses are black) and
    ``trim`` of its shorter side cut from every edge."""
    turned = img.rotate(degrees, resample=Image.Resampling.BICUBIC)
    cut = int(min(img.size) * trim)
    return turned.crop((cut, cut, img.width - cut, img.height - cut))


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


def text_box(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Three lines of dark text on a light, partly see-through box over the middle third of
    ``img``, and the box."""
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = out.size
    box = (w // 5, h // 3, w * 4 // 5, h * 2 // 3)
    draw.rounded_rectangle(box, radius=6, fill=(250, 250, 245, 210))
    draw.multiline_text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2),
                        "ME AT 3 AM\nNOT AGAIN\nPLOT TWIST",
                        font=ImageFont.load_default(size=max(10, h // 12)), anchor="mm",
                        align="center", fill=(0, 0, 0, 255))
    return Image.alpha_composite(out, layer).convert("RGB"), box


def corner(img: Image.Image, area: float = 0.5) -> Image.Image:
    w, h = img.size
    side = area ** 0.5
    return img.crop((0, 0, round(w * side), round(h * side)))


def screenshot(img: Image.Image) -> Image.Image:
    """The photo shown smaller inside a flat window with a title bar and a side panel."""
    return screenshot_at(img)[0]


def screenshot_at(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """``screenshot`` and where the photo is in it (left, top, right, bottom)."""
    canvas = Image.new("RGB", (1366, 768), (240, 240, 240))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 1366, 46), fill=(53, 132, 228))
    draw.text((12, 18), "Image Viewer - photo.jpg", fill=(255, 255, 255))
    draw.rectangle((0, 46, 220, 768), fill=(222, 222, 222))
    for i in range(6):
        draw.text((14, 70 + 34 * i), f"Item {i + 1}", fill=(128, 128, 128))
    scale = min(1100 / img.width, 660 / img.height) * 0.9
    shown = img.resize((round(img.width * scale), round(img.height * scale)))
    left, top = 240 + (1100 - shown.width) // 2, 60 + (680 - shown.height) // 2
    canvas.paste(shown, (left, top))
    return canvas, (left, top, left + shown.width, top + shown.height)


def write_photos(folder: Path, photos: dict[str, bytes]) -> Path:
    """Each photo as ``folder/<name>.jpg`` (the folder is created); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
    return folder


def dialog(panel: str) -> Image.Image:
    """A settings dialog's screenshot with the ``panel`` ("extra" or "misc") open: title
    bar, side panel with icons, buttons, and the panel's heading and paragraph."""
    heading, text = {"extra": ("Extra Information",
                               "Wikipedia (American English). Jefferson Lab. Webelements. "),
                     "misc": ("Miscellaneous", "This element was known to ancient cultures. "
                              "Origin of the name: Latin ferrum. ")}[panel]
    img = Image.new("RGB", (828, 589), (239, 240, 241))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    draw.rectangle((0, 0, 828, 22), fill=(71, 80, 87))
    draw.text((414, 11), "Iron (26) - Kalzium", font=font, anchor="mm", fill="white")
    for i, name in enumerate(PHOTOS[:4]):
        img.paste(photo(name).resize((24, 24)), (53, 40 + 70 * i))
        draw.text((65, 74 + 70 * i), name.title(), font=font, anchor="mm", fill="black")
    draw.line((130, 30, 130, 520), fill=(60, 150, 230), width=2)
    for x, label in ((15, "Help"), (600, "< Previous"), (680, "Next >"), (750, "Close")):
        draw.rectangle((x, 540, x + 70, 570), outline=(150, 150, 150), fill=(250, 250, 250))
        draw.text((x + 35, 555), label, font=font, anchor="mm", fill="black")
    draw.text((150, 45), heading, font=ImageFont.load_default(size=18), fill="black")
    draw.multiline_text((160, 100), textwrap.fill(text * 6, 70), font=font, fill=(20, 20, 20),
                        spacing=8)
    return img


ORANGE, BLUE = (1.0, 0.55, 0.25), (0.25, 0.55, 1.0)


def tinted(img: Image.Image, colour: tuple[float, float, float]) -> Image.Image:
    """``img`` in grey, each channel scaled by ``colour`` (``ORANGE``, ``BLUE``): every tint
    of one picture has the same grey pattern up to brightness, which the pixel check's
    correlation ignores."""
    grey = np.asarray(img.convert("L"), np.float32)
    return Image.fromarray(np.dstack([grey * c for c in colour]).astype(np.uint8))

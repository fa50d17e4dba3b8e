"""Real test photographs and the edits tests apply to them."""

from __future__ import annotations

import io
from pathlib import Path

import skimage.data
from PIL import Image

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


def write_photos(folder: Path, photos: dict[str, bytes]) -> Path:
    """Each photo as ``folder/<name>.jpg`` (the folder is created); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
    return folder

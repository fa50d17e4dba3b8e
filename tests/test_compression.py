"""Which of two copies of one picture was JPEG-compressed harder (``bogv.model.compression``),
on real photos re-saved as users re-save them."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFilter

from bogv.model.compression import Grid, grid, recompressed

from .images import captioned, encode, photo

MAX_PIXELS = 80_000_000


def grid_of(img: Image.Image, fmt: str = "JPEG", **params: object) -> Grid:
    found = grid(encode(img, fmt, **params), MAX_PIXELS)
    assert found is not None
    return found


def resaved(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(encode(img, quality=quality))).convert("RGB")


@pytest.mark.parametrize("name", ["coffee", "camera", "motorcycle_left"])
def test_a_copy_compressed_harder_shows_it_against_the_other(name: str) -> None:
    """At quality 30 and saved again at 92 (the coarse blocks stay), or saved at 60."""
    img = photo(name)
    original = grid_of(img, quality=92)
    for copy in (grid_of(resaved(img, 30), quality=92), grid_of(img, quality=60)):
        assert recompressed(copy, original)
        assert not recompressed(original, copy)


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea"])
def test_copies_compressed_alike_show_nothing(name: str) -> None:
    """Text drawn over one copy changes its blocks, not its compression; a lossless copy
    is never the one compressed harder."""
    img = photo(name)
    original, over = grid_of(img, quality=92), grid_of(captioned(img)[0], quality=92)
    assert not recompressed(over, original) and not recompressed(original, over)
    assert not recompressed(grid_of(img, "PNG"), original)


def test_copies_that_show_different_pixels_are_not_compared() -> None:
    """A blurred copy agrees with its original on too few blocks with detail to tell
    (either way), and copies of another size are not compared at all, however coarse."""
    img = photo("camera")
    original = grid_of(img, quality=92)
    blurred = grid_of(img.filter(ImageFilter.GaussianBlur(2)), quality=92)
    assert not recompressed(blurred, original) and not recompressed(original, blurred)
    assert not recompressed(grid_of(img.resize((500, 500)), quality=30), original)


def test_a_file_that_cannot_be_read_or_is_too_large_has_no_grid() -> None:
    assert grid(b"not an image", MAX_PIXELS) is None
    assert grid(encode(photo("camera"), quality=92), 512 * 512 - 1) is None

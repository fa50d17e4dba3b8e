"""Which of two copies of one picture was edited from the other (``bogv.model.edits``),
compared as the scan sees them: the thumbnails kept for the page."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from bogv.model import edits
from bogv.thumbs import make_thumbnail

from .images import PHOTOS, encode, photo, text_over


def look(img: Image.Image) -> edits.Look:
    """``img`` stored as a JPEG, as its thumbnail's look (decoded as the scan does)."""
    with Image.open(io.BytesIO(encode(img, quality=90))) as stored:
        thumbnail = make_thumbnail(stored)
    with Image.open(io.BytesIO(thumbnail)) as small, Image.open(io.BytesIO(thumbnail)) as whole:
        small.draft("RGB", (edits.SIDE, edits.SIDE))
        return edits.look(small, whole)


def recompressed(img: Image.Image) -> Image.Image:
    with Image.open(io.BytesIO(encode(img, quality=30))) as out:
        return out.convert("RGB")


EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "text over it": (text_over, "drawn over"),
    "blurred": (lambda img: img.filter(ImageFilter.GaussianBlur(4)), "blurred"),
    "greyscale": (lambda img: img.convert("L").convert("RGB"), "greyscale"),
    "contrast 0.6": (lambda img: ImageEnhance.Contrast(img).enhance(0.6), "washed out"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_shows_against_the_original_and_not_the_other_way(edit: str) -> None:
    make, found = EDITS[edit]
    for name in PHOTOS:
        if edit == "greyscale" and name == "camera":  # a grey photo: nothing to lose
            continue
        original = photo(name)
        copy, source = look(make(original)), look(original)
        assert found in edits.edits(copy, source), name
        assert edits.edits(source, copy) == (), name


def test_a_light_blur_shows_at_the_thumbnails_own_size() -> None:
    """A blur of 2 px over a photo of 450-640 px is mostly gone at ``SIDE``, where none of
    these showed it; at the thumbnail's own 256 px (``SHARP_SIDE``) each does."""
    for name in ("coffee", "chelsea", "astronaut", "rocket", "camera"):
        original = photo(name)
        copy, source = look(original.filter(ImageFilter.GaussianBlur(2))), look(original)
        assert edits.edits(copy, source) == ("blurred",), name
        assert edits.edits(source, copy) == (), name


def test_a_grey_photo_and_its_greyscale_copy_are_alike() -> None:
    camera = photo("camera")
    assert edits.edits(look(camera.convert("L").convert("RGB")), look(camera)) == ()


@pytest.mark.parametrize("edit", [recompressed, ImageOps.mirror,
                                  lambda img: ImageEnhance.Brightness(img).enhance(1.2)])
def test_what_loses_nothing_at_thumbnail_size_shows_neither_way(
        edit: Callable[[Image.Image], Image.Image]) -> None:
    """Re-compression, a flip, a brightened copy whose whites do not clip: nothing tells
    which came first (the oldest is then kept)."""
    for name in PHOTOS:
        original = photo(name)
        copy, source = look(edit(original)), look(original)
        assert edits.edits(copy, source) == edits.edits(source, copy) == (), name


def test_pictures_framed_differently_are_not_judged() -> None:
    coffee = photo("coffee")
    w, h = coffee.size
    crop = coffee.crop((0, 0, w // 2, h // 2)).resize((w, h))
    assert edits.edits(look(text_over(crop)), look(coffee)) == ()
    assert edits.edits(look(photo("chelsea")), look(coffee)) == ()

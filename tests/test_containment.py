"""A verified pair is a duplicate only when one picture holds (most of) the other
(``bogv.containment``): real photos, their crops, tiles and a screenshot of them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from bogv.containment import (
    AGREEING,
    COVERED,
    PARALLAX,
    PLAIN,
    SMALL,
    SUPPORTED,
    contained,
    coverage,
    duplicate,
    pixels_judge,
    supported,
)
from bogv.duplicates import Duplicates
from bogv.model import geometry, pixels, scoring
from bogv.results import Hit
from bogv.service import Service
from bogv.similar import Stored
from bogv.verdicts import pair

from .images import corner, encode, photo, rotated, screenshot, text_over
from .test_duplicates import add_files, allowed, names

__all__ = ["allowed"]  # the fixture: an allowed root the scan reads pixel sizes from


def tiles(name: str, overlap: float) -> tuple[Image.Image, Image.Image]:
    """A left and a right part of one photo sharing ``overlap`` of its width."""
    img = photo(name)
    w, h = img.size
    half = (1 + overlap) / 2
    return img.crop((0, 0, round(w * half), h)), img.crop((round(w * (1 - half)), 0, w, h))


def matched(a: Image.Image, b: Image.Image) -> geometry.Matched:
    """The matches of ``a``'s keypoints on ``b``'s or the other way round, the more of
    them (the scan matches each pair from both sides)."""
    one, other = (geometry.match(geometry.keypoints(x), geometry.keypoints(y))
                  for x, y in ((a, b), (b, a)))
    found = max((m for m in (one, other) if m is not None), key=lambda m: m.count)
    return found


def test_coverage_tells_a_copy_from_an_overlap() -> None:
    left, right = tiles("coffee", 0.4)
    overlap = matched(left, right)
    assert overlap.count >= scoring.COPY_INLIERS  # the search's check calls them a copy...
    assert coverage(overlap) < COVERED and not contained(overlap)  # ... they only overlap
    assert geometry.inliers(geometry.keypoints(left), geometry.keypoints(right)) == overlap.count
    img = photo("camera")
    for copy in (corner(img), screenshot(img)):
        found = matched(copy, img)
        assert found.count >= scoring.COPY_INLIERS and coverage(found) > 0.95
        assert contained(found)
    assert not contained(None)


def test_overlapping_tiles_are_not_duplicates(service: Service, allowed: Path) -> None:
    """Two parts of one photo sharing 40% of its width: real shared pixels, verified by
    keypoints, yet neither is a copy of the other."""
    left, right = tiles("coffee", 0.4)
    add_files(service, allowed, {"left": encode(left, quality=92),
                                 "right": encode(right, quality=92)})
    dups = Duplicates(service)
    assert dups.scan().copies == 0
    assert dups.groups() == []


def test_corner_crops_and_screenshots_are_duplicates(service: Service, allowed: Path,
                                                     photos: dict[str, bytes]) -> None:
    """A corner crop lies inside its original and the original inside its screenshot. The
    screenshot looks further off than the original's other copies (its vector is mostly
    the window's), so they fill the first places a search matches the keypoints of
    (``service.CHECKED``), and from its own side too few of its keypoints lie on the
    photo: only matching every neighbour of the original finds it. One thread: with two,
    which side checks a pair first sets its score, and the least edited of the photo and
    its re-saved copies is chosen by score sums closer than that."""
    img = photo("camera")
    images = dict(photos)
    images |= {f"camera-q{q}": encode(img, quality=q) for q in (30, 50, 70)}
    images["camera-grey"] = encode(img.convert("L"), quality=90)
    images["camera-corner"] = encode(corner(img), quality=90)
    images["camera-screenshot"] = encode(screenshot(img), quality=90)
    ids = add_files(service, allowed, images)
    dups = Duplicates(service, threads=1)
    dups.scan()
    groups = names(dups.groups(), ids)
    assert len(groups) == 1 and groups[0][0] == "camera"
    assert sorted(groups[0]) == sorted(n for n in images if n.startswith("camera"))


def test_a_pixel_copy_must_verify_both_ways() -> None:
    """The pixel check finds a picture inside a thumbnail; among star fields a scan runs
    it for so many pairs that one looks like another somewhere. A copy only pixels
    verified is a duplicate when the other picture's pixels verify against it too: a
    downscaled copy does; a stretch of sky does not, nor does a small crop of three
    quarters of it (the cost: its keypoints must verify it)."""
    img = photo("hubble_deep_field")
    w, h = img.size
    small = img.resize((w // 4, h // 4))
    part = img.crop((0, 0, w * 3 // 4, h * 3 // 4)).resize((w * 3 // 16, h * 3 // 16))
    hit = Hit(2, "k", "", 0.7, "copy")  # labelled a copy by a search's checks, no keypoints

    def likeness(a: Image.Image, b: Image.Image) -> float:
        return pixels.likeness(pixels.pattern(a), encode(b.resize((b.width // 2, b.height // 2))))

    assert likeness(small, img) >= scoring.COPY_PIXELS <= likeness(img, small)
    assert duplicate(hit, [lambda: b""], b"", lambda: likeness(img, small))
    assert likeness(part, img) >= scoring.COPY_PIXELS > likeness(img, part)
    assert not duplicate(hit, [lambda: b""], b"", lambda: likeness(img, part))


def test_a_pixel_copy_the_keypoints_place_inside_needs_no_way_back() -> None:
    """A copy the pixel check verified one way only still stands when a few dozen
    keypoint matches (``SUPPORTED``, short of a search's ``COPY_INLIERS``) make one
    picture contain the other: a combination of edits keeps a copy's pixels like its
    original's one way only, a look-alike star field has no such matches."""
    img = photo("chelsea")
    small = img.resize((round(img.width * 0.26), round(img.height * 0.26)))  # 38 matches
    query, stored = geometry.keypoints(small), geometry.keypoints(img)
    found = geometry.match(query, stored)
    assert found is not None and SUPPORTED <= found.count < scoring.COPY_INLIERS
    assert contained(found)
    hit = Hit(2, "k", "", 0.7, "copy")  # pixels verified it, the way back does not
    assert duplicate(hit, [lambda: query], stored, lambda: 0.0)
    assert not duplicate(hit, [lambda: query[:0]], stored, lambda: 0.0)


def test_pixels_where_the_keypoints_put_them_support_a_copy() -> None:
    """When neither pixel check verifies a pair that ``SUPPORTED`` matches place one inside
    the other, the pixels where those matches put them may (``pixels.ALIGNED``); never for
    a pair the matches do not place inside the other, and never under ``ALIGNED``."""
    img = photo("chelsea")
    small = img.resize((round(img.width * 0.26), round(img.height * 0.26)))
    found = geometry.match(geometry.keypoints(small), geometry.keypoints(img))
    assert found is not None and found.count >= SUPPORTED and contained(found)
    failed = [lambda: scoring.COPY_PIXELS - 0.1]
    assert supported(found, failed) == 0.0
    assert supported(found, failed, lambda m: pixels.ALIGNED) == pixels.ALIGNED
    assert supported(found, failed, lambda m: pixels.ALIGNED - 0.01) == 0.0
    assert supported(found, [lambda: 0.99], lambda m: pixels.ALIGNED) == 0.99  # checked first
    overlap = matched(*tiles("coffee", 0.4))  # two parts of one photo
    assert overlap.count >= SUPPORTED and not contained(overlap)
    assert supported(overlap, failed, lambda m: 1.0) == 0.0


def test_pixels_agree_where_the_keypoints_put_them(service: Service) -> None:
    """``Stored.aligned``: a photo in its screenshot (where the pixel check finds no frame:
    0.27-0.71) and a copy rotated 10° at 256 px (an icon's size, whose keypoints were found
    at 256 px, not ``geometry.SIDE``; from either side) agree with the original where their
    matches put them, from ``pixels.ALIGNED``; another photo under the same transforms
    does not."""
    def stored(img: Image.Image) -> Stored:
        return Stored(service.files, service.add(encode(img, quality=92)).id)

    motorcycle, camera = photo("motorcycle_left"), photo("camera")  # camera: 512 x 512 px
    rotated = camera.rotate(10, resample=Image.Resampling.BICUBIC).resize((256, 256))
    other = stored(photo("coffee")).thumbnail()
    photo_in_shot = stored(motorcycle), stored(screenshot(motorcycle))
    original, copy = stored(camera), stored(rotated)
    for query, candidate in (photo_in_shot, (original, copy), (copy, original)):
        matched = query.match(query.keypoints(), candidate.keypoints())
        assert matched is not None and matched.count >= SUPPORTED
        assert query.aligned(candidate.thumbnail(), matched) >= pixels.ALIGNED
        assert query.aligned(other, matched) < 0.6


def test_pixels_agree_where_the_keypoints_put_them_clear_of_text_over_either(
        service: Service) -> None:
    """Checked from the original's side, the letters over its copy are left out too, not
    only what is drawn over the query: three lines of text over a photo took its pixels
    from 0.90 to 0.97; another photo under the same transform stays far below."""
    def stored(img: Image.Image) -> Stored:
        return Stored(service.files, service.add(encode(img, quality=92)).id)

    astronaut = photo("astronaut")
    original, copy = stored(astronaut), stored(text_over(astronaut))
    matched = original.match(original.keypoints(), copy.keypoints())
    assert matched is not None
    assert original.aligned(copy.thumbnail(), matched) >= pixels.ALIGNED
    assert original.aligned(stored(photo("coffee")).thumbnail(), matched) < 0.6


def test_pixels_alone_do_not_make_copies_of_pictures_rich_in_keypoints() -> None:
    """Galaxies look alike at the pixel check's size, both ways, yet their star fields share
    almost no keypoint matches; a copy of a picture rich in keypoints keeps ``AGREEING``
    of them, even shrunk to a fifth. Pictures too plain for keypoints are the pixel
    check's alone (``pixels_judge``, which a search asks too)."""
    both_ways = Hit(2, "k", "", 0.7, "copy")  # the pixel check verified it both ways

    def keypoints(img: Image.Image) -> bytes:
        found = geometry.keypoints(img)
        assert geometry.count(found) >= PLAIN
        return found

    camera, coffee = keypoints(photo("camera")), keypoints(photo("coffee"))
    assert geometry.inliers(camera, coffee) < AGREEING
    assert not duplicate(both_ways, [lambda: camera], coffee, lambda: 1.0)
    chelsea = photo("chelsea")
    original = keypoints(chelsea)
    fifth = keypoints(chelsea.resize((chelsea.width // 5, chelsea.height // 5)))
    assert AGREEING <= geometry.inliers(fifth, original) < SUPPORTED
    assert duplicate(both_ways, [lambda: fifth], original, lambda: 1.0)
    plain = geometry.keypoints(photo("camera").resize((48, 48)))
    assert 0 < geometry.count(plain) < PLAIN and geometry.inliers(plain, camera) < AGREEING
    assert duplicate(both_ways, [lambda: plain], camera, lambda: 1.0)
    assert not pixels_judge(camera, coffee, AGREEING - 1)
    assert pixels_judge(camera, coffee, AGREEING) and pixels_judge(plain, camera, 0)
    # shrunk to 77 px a photo still keeps 138 keypoints, spanning too little to judge
    tiny = geometry.keypoints(photo("astronaut").resize((77, 77)))
    assert geometry.count(tiny) >= PLAIN and geometry.span(tiny) < SMALL
    assert pixels_judge(tiny, camera, 0)


def small_edited_copy() -> dict[str, bytes]:
    """A photo, three re-saved copies, and a brightened crop of it at a quarter of the size
    (``copy``): 20-59 keypoint matches with the photo, pixels verifying it one way."""
    img = photo("astronaut")
    w, h = img.size
    copy = ImageEnhance.Brightness(img.crop((0, 0, round(w * 0.9), round(h * 0.9)))).enhance(1.3)
    copy = copy.resize((round(copy.width * 0.25), round(copy.height * 0.25)))
    images = {"astronaut": encode(img, quality=92), "copy": encode(copy, quality=85)}
    return images | {f"astronaut-q{q}": encode(img, quality=q) for q in (30, 50, 70)}


def test_a_small_edited_copy_is_found_among_its_originals_copies(service: Service,
                                                                  allowed: Path) -> None:
    """A brightened crop shown at a quarter of the size: too few keypoint matches for a
    search's check, and never its best candidate (re-saved copies of the original look
    closer), so a search never runs the pixel check for it. Its keypoints still place it
    inside the original, and its pixels then verify it (``containment.supported``)."""
    images = small_edited_copy()
    ids = add_files(service, allowed, images)
    dups = Duplicates(service)
    dups.scan()
    assert [sorted(g) for g in names(dups.groups(), ids)] == [sorted(images)]


def test_groups_check_a_pair_as_the_scan_does(service: Service, allowed: Path) -> None:
    """A pair the scan did not check, checked when a group is anchored, gets the scan's
    checks, the keypoint-supported pixel check included."""
    images = small_edited_copy()
    ids = add_files(service, allowed, images)
    dups = Duplicates(service)
    dups.verdicts.save([pair(ids["astronaut"], ids["astronaut-q50"], "copy", 0.9, "copy"),
                        pair(ids["astronaut-q50"], ids["copy"], "copy", 0.6, "copy")])
    dups.groups()  # each member is tried as the reference: "astronaut" against "copy" too
    checked = pair(ids["astronaut"], ids["copy"], "copy").key
    assert [p.verdict for p in dups.verdicts.pairs() if p.key == checked] == ["copy"]


def test_two_views_of_one_scene_are_a_copy_only_when_their_pixels_agree() -> None:
    """The two views of a stereo camera: their matches stray from one transform along the
    line between the cameras (``geometry.parallax``: 2.4-3.0 px), a copy's alike in every
    direction, rotated, cropped, squashed or in a screenshot (under 0.6). Matched as a
    copy's are (the duplicate bench's stereo pairs kept 54-72 matches), the views are no
    duplicate by their keypoints, but are by pixels agreeing either way round."""
    left, right = photo("motorcycle_left"), photo("motorcycle_right")
    views = geometry.match(geometry.keypoints(right), geometry.keypoints(left))
    assert views is not None and contained(views)
    assert geometry.parallax(views) >= 2 * PARALLAX
    squashed = left.resize((round(left.width * 1.3), left.height))
    for copy in (rotated(left), corner(left), screenshot(left), squashed):
        for one, other in ((copy, left), (left, copy)):
            found = geometry.match(geometry.keypoints(one), geometry.keypoints(other))
            assert found is not None and geometry.parallax(found) < 0.6 * PARALLAX
    as_copy = dataclasses.replace(views, count=scoring.COPY_INLIERS)
    hit, query = Hit(2, "k", "", 0.9, "copy"), [lambda: b"right"]

    def judged(ahead: float, back: float, matched: geometry.Matched = as_copy) -> bool:
        return duplicate(hit, query, b"left", lambda: back, lambda q, s: matched,
                         ahead=lambda: ahead)

    apart = 0.70  # the views' pixel likeness either way round
    assert not judged(apart, apart)
    assert judged(scoring.COPY_PIXELS, apart) and judged(apart, scoring.COPY_PIXELS)
    copy = geometry.match(geometry.keypoints(rotated(left)), geometry.keypoints(left))
    assert copy is not None and copy.count >= scoring.COPY_INLIERS
    assert judged(0.0, 0.0, copy)  # a copy's keypoints need no pixels
    assert geometry.parallax(dataclasses.replace(views, pairs=None)) == 0.0  # nothing to tell
    one_point = np.zeros(30, np.int16)  # every match on one keypoint: RANSAC's no fit
    assert geometry.parallax(dataclasses.replace(views, pairs=(one_point, one_point))) == 0.0

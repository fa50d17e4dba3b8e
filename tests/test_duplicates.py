"""The duplicate scan, its groups, the image to keep and decisions that stick; and "more like
this" (``bogv.similar``). Milvus Lite here, the shared server in the last tests."""

from __future__ import annotations

import gc
import io
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from bogv import anchoring, containment, duplicates, folder_lock, freed
from bogv.config import Settings
from bogv.copy_checks import Seen, is_duplicate, uncovered
from bogv.duplicates import Duplicates, Group, Member
from bogv.errors import Busy, InvalidParameter, NotFound
from bogv.model import compression, geometry, pixels, scoring
from bogv.results import Hit
from bogv.service import KEYPOINTS, THUMBNAIL, Service
from bogv.session import FRESH
from bogv.similar import Stored, search_stored, verify
from bogv.store import Candidate
from bogv.verdicts import pair

from .conftest import hold_scans
from .images import (
    BLUE,
    ORANGE,
    PHOTOS,
    captioned,
    corner,
    edited_copy,
    encode,
    photo,
    rotated,
    screenshot,
    text_box,
    text_over,
    tinted,
)
from .test_folder_lock import hold, tell


def add_files(service: Service, folder: Path, images: dict[str, bytes]) -> dict[str, int]:
    """Each image as a file below ``folder`` (an allowed root), stored under its path, so
    the scan reads its real pixel size."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = {}
    for name, data in images.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(data)
        ids[name] = service.add(data, key=name, filepath=str(path)).id
    return ids


def names(groups: list[Group], ids: dict[str, int]) -> list[list[str]]:
    by_id = {v: k for k, v in ids.items()}
    return [[by_id[m.id] for m in g.members] for g in groups]


def scanned_with(service: Service, photos: dict[str, bytes], over: Image.Image
                 ) -> tuple[dict[str, int], set[tuple[int, int]]]:
    """The photos and ``over`` (stored as "over") scanned by one thread: their ids and the
    pairs saved as copies."""
    ids = {name: service.add(data, key=name).id for name, data in photos.items()}
    ids["over"] = service.add(encode(over, quality=90), key="over").id
    dups = Duplicates(service, threads=1)
    dups.scan()
    return ids, {(p.a, p.b) for p in dups.verdicts.pairs("copy")}


@pytest.fixture
def allowed(settings: Settings) -> Path:
    return settings.allowed_roots[0]


def test_scan_groups_copies_and_suggests_the_largest(service: Service, allowed: Path,
                                                     photos: dict[str, bytes]) -> None:
    images = dict(photos)
    images["coffee-small"] = edited_copy(photo("coffee"))  # 40%, JPEG quality 40
    images["camera-q30"] = encode(photo("camera"), quality=30)
    ids = add_files(service, allowed, images)
    dups = Duplicates(service)
    assert dups.pending() == len(images)
    seen: list[tuple[int, int]] = []
    report = dups.scan(lambda done, total: seen.append((done, total)))
    assert report.scanned == len(images) and seen[-1] == (len(images), len(images))
    assert dups.pending() == 0
    groups = dups.groups()
    assert sorted(names(groups, ids)) == [["camera", "camera-q30"], ["coffee", "coffee-small"]]
    coffee = next(g for g in groups if g.suggested == ids["coffee"])
    assert coffee.why == "largest: 600x400 px"
    assert [m.match for m in coffee.members] == ["reference", "copy"]
    assert coffee.members[1].score >= 0.5 and coffee.members[1].width == 240
    camera = next(g for g in groups if ids["camera"] in {m.id for m in g.members})
    assert camera.suggested == ids["camera"]  # as large: the one compressed less
    assert camera.why == "least edited: 1 of the other 1 as large look re-compressed"
    assert dups.groups(min_score=0.999) == []  # no copy here is nearly the same pixels


def test_scan_is_incremental_and_deleted_images_leave_groups(
        service: Service, allowed: Path, photos: dict[str, bytes]) -> None:
    ids = add_files(service, allowed, photos)
    dups = Duplicates(service)
    dups.scan()
    assert dups.groups() == []
    ids |= add_files(service, allowed, {"rocket-small": edited_copy(photo("rocket"))})
    assert dups.pending() == 1
    report = dups.scan()
    assert report.scanned == 1 and report.copies == 1  # only the new image was checked
    assert names(dups.groups(), ids) == [["rocket", "rocket-small"]]
    assert service.delete_ids([ids["rocket-small"]]) == 1  # the normal delete path
    assert dups.groups() == []


def test_a_scan_checks_each_pair_once(service: Service, photos: dict[str, bytes],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy, a mirrored copy and a re-compressed copy of one photo: the scan verifies
    each image against its neighbours in several passes (the mirrored copy is checked on
    its own), a few at a time. No pair of keypoint sets is matched twice, and a pair one
    image found a copy is not checked again from the other side, on a later page too."""
    calls: list[tuple[bytes, bytes]] = []

    def spy(own: bytes, other: bytes) -> geometry.Matched | None:
        calls.append((own, other))
        return real(own, other)

    real = geometry.match
    monkeypatch.setattr(geometry, "match", spy)
    images = {n: photos[n] for n in PHOTOS[:4]}
    images["coffee-small"] = edited_copy(photo("coffee"))
    images["coffee-mirror"] = encode(ImageOps.mirror(photo("coffee")), quality=80)
    images["coffee-q30"] = encode(photo("coffee"), quality=30)
    ids = {name: service.add(data, key=name).id for name, data in images.items()}
    dups = Duplicates(service, threads=1)  # two images checked at once may both check a pair
    monkeypatch.setattr(duplicates, "BATCH", 3)  # pages searched and saved beside the checks
    report = dups.scan()
    assert report.scanned == len(images) and dups.pending() == 0
    assert report.checked == len(calls) > 0
    assert len(set(calls)) == len(calls)
    points = {service.files.read(i, KEYPOINTS): i for i in ids.values()}
    matched = {(points[a], points[b]) for a, b in calls if a in points and b in points}
    copies = {(p.a, p.b) for p in dups.verdicts.pairs("copy")}
    assert copies and not any((a, b) in matched and (b, a) in matched for a, b in copies)
    groups = names(dups.groups(), ids)
    assert [g[0] for g in groups] == ["coffee"]
    assert sorted(groups[0]) == ["coffee", "coffee-mirror", "coffee-q30", "coffee-small"]


def test_pairs_read_back_hold_no_dict_and_share_their_words(service: Service) -> None:
    """The groups of 100k images read some 400k pairs at once: none holds a dict of its
    own, and their verdicts and matches are a few strings, not two for each pair."""
    verdicts = Duplicates(service).verdicts
    verdicts.save([pair(i, i + 1, "copy", 0.9, "copy") for i in range(1, 40, 2)]
                  + [pair(100, 101, "distinct")])
    read = list(verdicts.pairs())
    assert len(read) == 21 and not any(hasattr(p, "__dict__") for p in read)
    assert len({id(p.verdict) for p in read}) == len({id(p.match) for p in read}) == 2


def test_only_a_stored_image_with_something_drawn_over_it_takes_a_second_look(
        service: Service) -> None:
    """The scan would take a search's second look for every image without a copy among
    its neighbours; a photo with nothing drawn over it is spared it."""
    for name in ("coffee", "chelsea", "rocket"):
        plain = service.add(encode(photo(name), quality=92), key=name).id
        over = service.add(encode(captioned(photo(name))[0], quality=92), key=f"{name}-c").id
        assert Stored(service.files, plain).uncovered() == b"", name
        assert len(Stored(service.files, over).uncovered()) > 0, name


def test_a_stored_record_is_freed_as_soon_as_it_is_dropped(service: Service) -> None:
    """What the checks made of a record (its pattern, second looks, memo of matches) goes
    with it, not at the cycle collector's next pass: the scan makes several records an
    image, and its peak memory held theirs."""
    record = Stored(service.files, service.add(encode(photo("astronaut"), quality=92)).id)
    record.pattern(), record.enlarged(), record.copy_inliers(), record.mirrored()
    record.match(record.keypoints(), record.keypoints())
    gone = weakref.ref(record)
    gc.disable()
    try:
        del record
        assert gone() is None
    finally:
        gc.enable()


def test_a_stored_images_pixel_check_leaves_out_what_is_drawn_over_it(
        service: Service) -> None:
    """As a search's does for an upload (``test_quality``): a stored captioned photo's
    pixels, compared clear of its letters, are its original's, and nothing like another
    photo's."""
    other = service.files.read(service.add(encode(photo("motorcycle_left"), quality=92),
                                           key="other").id, THUMBNAIL) or b""
    for name in ("chelsea", "astronaut", "rocket"):
        plain = service.add(encode(photo(name), quality=92), key=name).id
        over = Stored(service.files, service.add(
            encode(captioned(photo(name))[0], quality=92), key=f"{name}-c").id)
        original = service.files.read(plain, THUMBNAIL) or b""
        assert pixels.likeness(over.pattern(), original) >= 0.97, name
        assert pixels.likeness(over.pattern(), other) < 0.5, name


def test_a_stored_image_compares_a_thumbnail_once(service: Service,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The search's own pixel check of a candidate too small for keypoints, then the scan
    asking for the same likeness again (``copy_checks.supported_hit``): compared once."""
    compared: list[bytes] = []

    def spy(pattern: pixels.Pattern, thumbnail: bytes) -> float:
        compared.append(thumbnail)
        return real(pattern, thumbnail)

    real = pixels.likeness
    monkeypatch.setattr(pixels, "likeness", spy)
    img = photo("camera")
    big = service.add(encode(img, quality=92), key="camera").id
    small = service.add(encode(img.resize((64, 64)), quality=92), key="camera-64").id
    query = Stored(service.files, big)
    candidate = Candidate(small, "camera-64", "", "", 0.8)
    hit = verify(service.files, query, [candidate])[0]
    assert hit.match == "copy" and compared  # by its pixels
    thumbnail = service.files.read(small, THUMBNAIL) or b""
    assert query.likeness(query.pattern(), thumbnail) >= scoring.COPY_PIXELS
    assert compared == [thumbnail]


def test_the_scan_takes_a_searchs_second_look_at_a_captioned_copy(
        service: Service, photos: dict[str, bytes]) -> None:
    """Text over a photo holds its strongest keypoints, so its first look misses the
    original (``test_quality``); its second look, outside the letters, verifies it, though
    the original, checked first, already matched the pair's keypoints."""
    ids = {name: service.add(data, key=name).id for name, data in photos.items()}
    for name in ("chelsea", "astronaut", "rocket"):
        ids[f"{name}-captioned"] = service.add(encode(captioned(photo(name))[0], quality=90),
                                               key=f"{name}-captioned").id
    dups = Duplicates(service, threads=1)
    dups.scan()
    assert sorted(names(dups.groups(), ids)) == [
        ["astronaut", "astronaut-captioned"], ["chelsea", "chelsea-captioned"],
        ["rocket", "rocket-captioned"]]


def test_the_scan_takes_a_small_images_second_look_at_it_enlarged(
        service: Service) -> None:
    """As a search does (``test_quality``): the astronaut under dark text, shrunk to 45%,
    keeps too few matches with its original at either look; its second look at it
    enlarged twice makes it a copy (``copy_checks.uncovered``), a duplicate
    (``copy_checks.is_duplicate``). Only an image smaller than its thumbnail's size (the
    thumbnail is then the image) takes it, and only against a neighbour whose keypoints
    span ``copy_checks.LARGER`` times its own."""
    edited = text_box(photo("astronaut"))[0]
    over = edited.resize((edited.width * 45 // 100, edited.height * 45 // 100))
    original = service.add(encode(photo("astronaut"), quality=92), key="astronaut").id
    query = Stored(service.files, service.add(encode(over, quality=90), key="over").id)
    stored = service.files.read(original, KEYPOINTS) or b""
    assert max(query.inliers(query.keypoints(), stored),
               query.inliers(query.uncovered(), stored)) < scoring.COPY_INLIERS
    candidate = Candidate(original, "astronaut", "", "", 0.5)
    hit = uncovered(query, candidate, Hit(original, "astronaut", "", 0.25, "similar"), stored)
    assert hit.match == "copy" and is_duplicate(query, hit, stored, service.files)
    assert query.enlarged() and Stored(service.files, original).enlarged() == b""
    alike = Stored(service.files, query.id)  # a neighbour its own size: no such look
    alike.enlarged = lambda: pytest.fail("enlarged against a picture as small")
    coffee = photo("coffee")
    uncovered(alike, candidate, Hit(original, "coffee", "", 0.25, "similar"),
               geometry.keypoints(coffee.resize((over.width, over.width * 2 // 3))))


def test_the_scan_takes_the_second_look_beside_a_copy_it_verified(service: Service) -> None:
    """A captioned, rotated photo (first look: 12-31 matches, letters hold its keypoints;
    its pixels: rotated) whose recompressed copy verifies at first look still takes its
    second look (66-113 matches) at the original: the pair is saved as a copy."""
    ids = {}
    for name in ("coffee", "chelsea"):
        over = captioned(photo(name))[0].rotate(8, resample=Image.Resampling.BICUBIC)
        ids[name] = service.add(encode(photo(name), quality=92), key=name).id
        ids[f"{name}-c"] = service.add(encode(over, quality=92), key=f"{name}-c").id
        ids[f"{name}-c30"] = service.add(encode(over, quality=30), key=f"{name}-c30").id
    dups = Duplicates(service, threads=1)
    dups.scan()
    copies = {(p.a, p.b) for p in dups.verdicts.pairs("copy")}
    for name in ("coffee", "chelsea"):
        assert (min(ids[name], ids[f"{name}-c"]), max(ids[name], ids[f"{name}-c"])) in copies


def test_the_scan_verifies_pixels_where_the_keypoints_put_them(service: Service) -> None:
    """A photo rotated 10° and shrunk to 30% keeps 35-41 keypoint matches placing it inside
    its original (short of a search's 60), and the pixel check, which looks for an upright
    frame, misses it both ways (0.25-0.75); warped by the matches' transform, its pixels
    agree (0.98-1.0, ``pixels.ALIGNED``): the pair is a copy, and no other pair is."""
    ids = {}
    for name in ("chelsea", "rocket"):
        img = photo(name)
        small = img.rotate(10, resample=Image.Resampling.BICUBIC).resize(
            (round(img.width * 0.3), round(img.height * 0.3)))
        ids[name] = service.add(encode(img, quality=92), key=name).id
        ids[f"{name}-r"] = service.add(encode(small, quality=92), key=f"{name}-r").id
    dups = Duplicates(service, threads=1)
    dups.scan()
    copies = {(p.a, p.b) for p in dups.verdicts.pairs("copy")}
    assert copies == {tuple(sorted((ids[n], ids[f"{n}-r"]))) for n in ("chelsea", "rocket")}


def test_the_scan_supports_a_copy_by_the_matches_of_its_second_look(
        service: Service, photos: dict[str, bytes]) -> None:
    """Three lines of text over a photo rotated 6°: its first look keeps 9 keypoint
    matches with the original (the letters hold its strongest corners), too few to place
    one picture inside the other (``SUPPORTED``), and the pixel check, which looks for an
    upright frame, gives 0.52-0.58 both ways. Its second look, outside the letters, keeps
    27 that do, and the pixels agree where those put it (0.999): the pair is a copy, and
    no other pair is."""
    over = text_over(photo("motorcycle_left")).rotate(6, resample=Image.Resampling.BICUBIC)
    ids, copies = scanned_with(service, photos, over)
    assert copies == {tuple(sorted((ids["motorcycle_left"], ids["over"])))}


@pytest.mark.parametrize("hue", [True, False])
def test_the_scan_keeps_pictures_alike_in_grey_apart_by_their_hue(
        service: Service, monkeypatch: pytest.MonkeyPatch, hue: bool) -> None:
    """Two soft pictures with 14-32 keypoints are the pixel check's to judge
    (``containment.pixels_judge``): one grey pattern in orange and in blue is one picture in
    grey, as two small galaxies are; their hues tell them apart (``pixels.HUE_APART``),
    while a shrunk, recompressed copy of one keeps its hue and its group."""
    if not hue:
        monkeypatch.setattr(pixels, "HUE_APART", 360.0)
    soft = photo("coffee").resize((200, 133)).filter(ImageFilter.GaussianBlur(4))
    orange = tinted(soft, ORANGE)
    shrunk = Image.open(io.BytesIO(encode(orange, quality=50))).resize((150, 100))
    ids = {name: service.add(data, key=name).id for name, data in {
        "orange": encode(orange, "PNG"), "blue": encode(tinted(soft, BLUE), "PNG"),
        "orange, shrunk": encode(shrunk, quality=90), "coffee": encode(photo("coffee")),
        "chelsea": encode(photo("chelsea"))}.items()}
    dups = Duplicates(service)
    dups.scan()
    grouped = sorted(sorted(g) for g in names(dups.groups(), ids))
    expected = ["orange", "orange, shrunk"] + ([] if hue else ["blue"])
    assert grouped == [sorted(expected)]


@pytest.mark.parametrize("views", [False, True])
def test_the_scan_leaves_two_views_of_one_scene_to_the_pixels(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch,
        views: bool) -> None:
    """Keypoint matches that stray along one direction (``geometry.parallax``) are two
    photos of one scene unless the pixels agree: made to read every pair so, the scan still
    pairs a photo with its recompressed copy, whose pixels agree, but no longer with its
    rotated copy, which only keypoints verify."""
    if views:
        monkeypatch.setattr(geometry, "parallax", lambda matched: containment.PARALLAX)
    camera = photo("camera")
    ids = {name: service.add(data, key=name).id for name, data in {
        **photos, "recompressed": encode(camera, quality=40),
        "rotated": encode(rotated(camera), quality=90)}.items()}
    dups = Duplicates(service, threads=1)
    dups.scan()
    by_id = {v: k for k, v in ids.items()}
    copies = {tuple(sorted((by_id[p.a], by_id[p.b]))) for p in dups.verdicts.pairs("copy")}
    assert ("camera", "recompressed") in copies
    assert (("camera", "rotated") in copies) is not views


def test_the_scan_finds_a_copy_that_is_no_neighbour_by_the_pieces_it_shares(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose vector is not among its original's neighbours, nor theirs among its
    own (a star field's app overlay or watermark ranked past the 50th), is found by the
    descriptor pieces the two share, as a search looks past its candidates; no other pair
    is."""
    over = captioned(photo("astronaut"))[0]
    ids = {name: service.add(data, key=name).id for name, data in photos.items()}
    ids["over"] = service.add(encode(over, quality=90), key="over").id
    apart = {ids["astronaut"], ids["over"]}
    real = service.store.neighbours

    def neighbours(vectors: np.ndarray, limit: int) -> list[list[Candidate]]:
        """Each image first (itself), then neither of the pair."""
        return [row[:1] + [c for c in row[1:] if c.id not in apart]
                for row in real(vectors, limit)]

    monkeypatch.setattr(service.store, "neighbours", neighbours)
    dups = Duplicates(service, threads=1)
    dups.scan()
    assert {(p.a, p.b) for p in dups.verdicts.pairs("copy")} == {tuple(sorted(apart))}


def test_a_scan_frees_the_index_of_pieces_it_filled_and_keeps_one_kept_before(
        service: Service, photos: dict[str, bytes]) -> None:
    """``bogv duplicates`` fills the index for its scan and frees it for the groups; a
    service that keeps one (``bogv serve`` fills it as it starts) still has it after."""
    for name, data in photos.items():
        service.add(data, key=name)
    Duplicates(service, threads=1).scan()
    assert len(service.pieces) == 0 and not service.indexing_pieces
    service.index_pieces()
    service.add(encode(photo("coffee"), quality=40), key="coffee-q40")
    Duplicates(service, threads=1).scan()
    assert len(service.pieces) == len(photos) + 1 and service.indexing_pieces


def test_an_image_with_a_copy_among_its_first_neighbours_votes_on_no_others(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """As a search stops at its copy: only the images without one ask which stored images
    share the most descriptor pieces with them."""
    for name, data in photos.items():
        service.add(data, key=name)
    service.add(encode(photo("coffee"), quality=40), key="coffee-q40")
    asked: list[int] = []

    def spy(looks: list[bytes], n: int, leave_out: object = ()) -> list[int]:
        asked.append(n)
        return []

    monkeypatch.setattr(service.pieces, "best", spy)
    Duplicates(service, threads=1).scan()
    assert len(asked) == len(photos) - 1


def test_the_scan_knows_which_images_copies_already_link() -> None:
    """What spares the scan the one-by-one checks of a pair: the copies found so far link
    its images (through others), or one side found it a copy, checked before the other."""
    seen = Seen(dismissed={pair(1, 9, "dismissed").key})
    seen.page([1, 2, 3, 4])
    assert seen.start(1, [2, 3, 9]) == (set(), {9})
    seen.read(1, 2)  # 1 matched 2's keypoints
    seen.found(1, [pair(1, 2, "copy"), pair(1, 3, "copy")])
    seen.found(4, [pair(4, 5, "copy")])
    assert seen.joined(2, 3) and seen.joined(4, 5) and not seen.joined(3, 5)
    assert seen.start(2, [1, 3]) == ({1}, {1})
    assert seen.start(3, [1]) == (set(), {1})
    seen.done([1, 2, 3, 4])
    assert seen.matched == {} and seen.copies == {5: {4}}  # 5 is on a later page


def test_groups_are_made_once_per_state(service: Service, allowed: Path,
                                        photos: dict[str, bytes]) -> None:
    """Pages are read from groups kept since they were made; scanning, deleting or
    dismissing makes them again, adding (no pairs before the next scan) does not."""
    ids = add_files(service, allowed, photos | {"coffee-small": edited_copy(photo("coffee"))})
    dups = Duplicates(service)
    dups.scan()
    assert names(dups.groups(), ids) == [["coffee", "coffee-small"]]
    # A pair written behind the groups' back (no path of bogv does) shows only once the
    # state changes: until then pages come from the groups already made.
    dups.verdicts.save([pair(ids["rocket"], ids["camera"], "copy", 0.8, "copy")])
    assert names(dups.groups(), ids) == [["coffee", "coffee-small"]]
    ids |= add_files(service, allowed, {"chelsea-q20": encode(photo("chelsea"), quality=20)})
    assert names(dups.groups(), ids) == [["coffee", "coffee-small"]]
    dups.scan()
    assert sorted(map(sorted, names(dups.groups(), ids))) == [
        ["camera", "rocket"], ["chelsea", "chelsea-q20"], ["coffee", "coffee-small"]]
    dups.dismiss([ids["rocket"], ids["camera"]])
    assert len(dups.groups()) == 2
    service.delete_ids([ids["coffee-small"]])
    assert names(dups.groups(), ids) == [["chelsea", "chelsea-q20"]]


def test_a_deleted_image_leaves_its_group_though_an_add_keeps_the_count(
        service: Service, allowed: Path, photos: dict[str, bytes]) -> None:
    """Replacing an image (its record deleted, another added) leaves as many stored as
    before. Its group must still drop it: kept, "Keep all suggested" would keep an image
    that is gone and delete every copy of it."""
    ids = add_files(service, allowed, photos | {"coffee-small": edited_copy(photo("coffee"))})
    dups = Duplicates(service)
    dups.scan()
    assert names(dups.groups(), ids) == [["coffee", "coffee-small"]]
    assert service.delete_ids([ids["coffee"]]) == 1
    add_files(service, allowed, {"rocket-q20": encode(photo("rocket"), quality=20)})
    assert dups.groups() == []


def two_groups(service: Service, allowed: Path, photos: dict[str, bytes]) -> dict[str, int]:
    """Two originals, one with two copies, one with one."""
    return add_files(service, allowed, {
        "coffee": photos["coffee"], "coffee-small": edited_copy(photo("coffee")),
        "chelsea": photos["chelsea"], "chelsea-q20": encode(photo("chelsea"), quality=20),
        "chelsea-small": edited_copy(photo("chelsea"))})


def anchored_components(dups: Duplicates, ids: dict[str, int],
                        monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The components ``dups`` anchors from now on, by image name, as they are anchored."""
    anchored: list[set[str]] = []
    by_id = {v: k for k, v in ids.items()}
    original = dups.anchoring.anchored

    def spy(component: anchoring.Component) -> tuple[list[Group], list[Any]]:
        anchored.append({by_id[i] for i in component.records})
        return original(component)

    monkeypatch.setattr(dups.anchoring, "anchored", spy)
    return anchored


def test_a_change_anchors_again_only_the_groups_it_touches(
        service: Service, allowed: Path, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A delete or a dismissal in the page makes the groups again: only the component it
    changed is anchored anew, the others are the groups made before, and the whole is what
    making every group afresh gives."""
    ids = two_groups(service, allowed, photos)
    dups = Duplicates(service)
    dups.scan()
    anchored = anchored_components(dups, ids, monkeypatch)
    assert sorted(map(sorted, names(dups.groups(), ids))) == [
        ["chelsea", "chelsea-q20", "chelsea-small"], ["coffee", "coffee-small"]]
    assert len(anchored) == 2
    anchored.clear()
    service.delete_ids([ids["chelsea-small"]])
    groups = dups.groups()
    assert anchored == [{"chelsea", "chelsea-q20"}]
    dups.kept.clear()  # made afresh, not read back
    assert groups == Duplicates(service).groups()
    anchored.clear()
    dups.dismiss([ids["coffee"], ids["coffee-small"]])  # their one pair: no component left
    assert names(dups.groups(), ids) == [["chelsea", "chelsea-q20"]]
    assert anchored == []


def test_the_scan_and_the_anchoring_give_memory_back_as_they_go(
        service: Service, allowed: Path, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc keeps the memory a page of the scan or a chunk of anchoring freed (decoded
    thumbnails, matches) below what is still held: each gives it back when it ends. At
    100k images the process made its groups at 770-970 MB without, beside Milvus Lite's
    ~480 MB (``README.md``: "The star vote's counters, and the groups' memory")."""
    ids = two_groups(service, allowed, photos)
    monkeypatch.setattr(duplicates, "BATCH", 3)  # two pages of the five images
    monkeypatch.setattr(duplicates, "VECTORS_AT_ONCE", 2)  # a chunk per component
    callers: list[str] = []
    monkeypatch.setattr(freed, "give_back", lambda: callers.append(sys._getframe(1).f_code.co_name))
    dups = Duplicates(service)
    dups.scan()
    assert callers.count("_scan") == 2
    assert sorted(map(sorted, names(dups.groups(), ids))) == [
        ["chelsea", "chelsea-q20", "chelsea-small"], ["coffee", "coffee-small"]]
    assert callers.count("_anchored_groups") == 2


def test_the_next_process_reads_the_groups_back_and_anchors_only_what_changed(
        service: Service, allowed: Path, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """``bogv duplicates`` and a restarted ``bogv serve`` make the groups in a new process:
    the groups made before are read back from the file they were kept in, only a component
    changed since is anchored, and a file that other code made, or that cannot be read,
    is not used."""
    ids = two_groups(service, allowed, photos)
    first = Duplicates(service)
    first.scan()
    progress: list[tuple[int, int]] = []
    made = first.groups(on_progress=lambda *done: progress.append(done))
    assert len(made) == 2
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)  # images of components anchored
    later = Duplicates(service)
    anchored = anchored_components(later, ids, monkeypatch)
    progress.clear()
    assert later.groups(on_progress=lambda *done: progress.append(done)) == made
    assert anchored == [] and progress == [(0, 0)]
    service.delete_ids([ids["chelsea-small"]])
    after = Duplicates(service)
    anchored = anchored_components(after, ids, monkeypatch)
    assert names(after.groups(), ids) == names(later.groups(), ids)
    assert anchored == [{"chelsea", "chelsea-q20"}]
    # Other code (its rules may differ), or a file that cannot be read: made afresh.
    monkeypatch.setattr("bogv.duplicates.made_by", lambda *setting: "other code")
    anchored = anchored_components(other := Duplicates(service), ids, monkeypatch)
    assert other.groups() == after.groups()
    assert len(anchored) == 2
    monkeypatch.undo()
    after.kept.path.write_text('{"made_by": ')
    anchored = anchored_components(broken := Duplicates(service), ids, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="bogv.kept_groups"):
        assert broken.groups() == after.groups()
    assert len(anchored) == 2
    assert "ignoring the kept duplicate groups" in caplog.text
    # the broken file was replaced
    anchored = anchored_components(mended := Duplicates(service), ids, monkeypatch)
    assert mended.groups() == after.groups()
    assert anchored == []
    mended.forget()  # a benchmark's fresh start: no pairs, no groups kept
    assert not mended.kept.path.exists()
    assert mended.groups() == [] and mended.pending() == 4


def test_progress_follows_the_scan_and_the_grouping(service: Service, allowed: Path,
                                                   photos: dict[str, bytes]) -> None:
    """``progress`` (what the page shows) says, while each runs, what its own progress
    callback is told; nothing when neither runs."""
    add_files(service, allowed, {"coffee": photos["coffee"],
                                 "coffee-small": edited_copy(photo("coffee")),
                                 "rocket": photos["rocket"]})
    dups = Duplicates(service, threads=1)
    assert dups.progress() == {}
    seen: list[tuple[str, int, int, int, int]] = []

    def tick(done: int, total: int) -> None:
        (stage, p), = dups.progress().items()
        seen.append((stage, p.done, p.total, done, total))

    dups.scan(tick)
    assert dups.progress() == {}
    dups.groups(on_progress=tick)
    assert dups.progress() == {}
    assert seen[0] == ("scanning", 0, 3, 0, 3) and ("scanning", 3, 3, 3, 3) in seen
    assert seen[-1] == ("grouping", 2, 2, 2, 2)  # the images of the one component
    assert all(s[1:3] == s[3:] for s in seen)  # what progress says = what the callback is told


def test_the_reference_is_what_the_others_are_copies_of(service: Service,
                                                         allowed: Path) -> None:
    """Left and right crops of one photo share only a strip; both are copies of a smaller
    whole. The crops have more pixels, but neither is a copy of the other: the group is
    anchored on the whole, which both crops verify against."""
    img = photo("astronaut")
    w, h = img.size
    images = {"left": img.crop((0, 0, int(w * 0.6), h)), "right": img.crop((int(w * 0.4), 0, w, h)),
              "whole-small": img.resize((int(w * 0.55), int(h * 0.55)))}
    ids = add_files(service, allowed, {k: encode(v, quality=90) for k, v in images.items()})
    dups = Duplicates(service)
    dups.scan()
    groups = dups.groups()
    assert [n[0] for n in names(groups, ids)] == ["whole-small"]
    assert sorted(names(groups, ids)[0]) == ["left", "right", "whole-small"]
    assert groups[0].why == "the others are copies of it (a larger one is not of them all)"


def test_the_original_is_kept_over_edited_copies_stored_before_it(
        service: Service, allowed: Path, photos: dict[str, bytes]) -> None:
    """As large as each other, the copies with text over them or blurred are older; the
    original is kept, because each looks edited against it (``edits``), not the other way."""
    astronaut = photo("astronaut")
    images = {"astronaut-text": encode(captioned(astronaut)[0], quality=90),
              "astronaut-blurred": encode(astronaut.filter(ImageFilter.GaussianBlur(4)),
                                          quality=90), **photos}
    ids = add_files(service, allowed, images)
    dups = Duplicates(service, threads=1)
    dups.scan()
    groups = dups.groups()
    assert [sorted(g) for g in names(groups, ids)] == [
        ["astronaut", "astronaut-blurred", "astronaut-text"]]
    assert groups[0].suggested == ids["astronaut"]
    assert groups[0].why == "least edited: 2 of the other 2 as large look blurred or drawn over"


def test_the_original_is_kept_over_a_re_compressed_copy_stored_before_it(
        service: Service, allowed: Path, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy saved at quality 30 and then re-saved at 92, as large and older than its
    original: nothing tells them apart at thumbnail size, but its file carries the coarser
    compression's blocks (``compression``); without that, or when the file at its path is
    no longer the one stored, the older copy is kept."""
    resaved = Image.open(io.BytesIO(encode(photo("camera"), quality=30)))
    ids = add_files(service, allowed, {"camera-resaved": encode(resaved, quality=92),
                                       **photos})
    dups = Duplicates(service, threads=1)
    dups.scan()
    groups = dups.groups()
    assert [sorted(g) for g in names(groups, ids)] == [["camera", "camera-resaved"]]
    assert groups[0].suggested == ids["camera"]
    assert groups[0].why == "least edited: 1 of the other 1 as large look re-compressed"
    monkeypatch.setattr(compression, "HARDER", float("inf"))
    dups.kept.clear()  # made afresh, not read back
    assert Duplicates(service).groups()[0].suggested == ids["camera-resaved"]
    monkeypatch.undo()
    # the file at the copy's path is no longer the image stored: it tells nothing
    (allowed / "camera-resaved.jpg").write_bytes(encode(photo("camera"), quality=30))
    dups.kept.clear()
    assert Duplicates(service).groups()[0].suggested == ids["camera-resaved"]


def test_among_copies_alike_the_one_sharing_the_most_is_kept(service: Service) -> None:
    """Copies as large as each other that show no edit against each other (here three
    photos the saved pairs call copies): the one sharing the most with the others, not the
    oldest."""
    names_ = ["rocket", "coffee", "chelsea"]  # oldest first
    ids = {n: service.add(encode(photo(n).resize((300, 200)), quality=90), key=n).id
           for n in names_}
    dups = Duplicates(service)
    dups.verdicts.save([pair(ids["coffee"], ids["chelsea"], "copy", 0.9, "copy"),
                        pair(ids["coffee"], ids["rocket"], "copy", 0.9, "copy"),
                        pair(ids["chelsea"], ids["rocket"], "copy", 0.6, "copy")])
    groups = dups.groups()
    assert [g.suggested for g in groups] == [ids["coffee"]]
    assert groups[0].why == "least edited: it shares the most with the other copies"


def test_a_larger_copy_is_kept_when_it_holds_the_whole_reference_as_sharp(
        service: Service, allowed: Path) -> None:
    """The reference is what the others are copies of: it can be a small copy (a 40%
    downscale that more copies verify against). The original holds all of it at 2.5 times
    its pixels and is kept, scored against it through the reference. A screenshot holds all
    of it too, enlarged in a flat window; a corner crop of the original holds a part of it;
    a collage holds the original at 80% of its size: none is kept, whatever their pixels."""
    img = photo("chelsea")
    small = img.resize((img.width * 2 // 5, img.height * 2 // 5))
    collage = photo("coffee").resize((560, 372))
    collage.paste(img.resize((img.width * 4 // 5, img.height * 4 // 5)), (20, 20))
    images = {"small": small, "original": img, "screenshot": screenshot(small),
              "corner": corner(img), "collage": collage}
    ids = add_files(service, allowed, {k: encode(v, quality=90) for k, v in images.items()})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}
    nodes = {n: anchoring._Node(records[i], *dups.anchoring._dimensions(records[i]), 0.0)
             for n, i in ids.items()}

    def suggest(reference: str, *others: str) -> Group:
        members = [Member(ids[reference], reference, "", 1.0, "reference", True,
                          nodes[reference].width, nodes[reference].height)]
        members += [Member(ids[n], n, "", 0.8 - 0.1 * k, "copy", False, nodes[n].width,
                           nodes[n].height) for k, n in enumerate(others)]
        return dups.anchoring._suggest(nodes[reference], members,
                                       [nodes[n] for n in (reference, *others)])

    group = suggest("small", "original", "screenshot", "corner")
    assert group.suggested == ids["original"]
    assert group.why == "largest holding the whole picture: 451x300 px"
    scores = {m.id: (m.score, m.match) for m in group.members[1:]}
    assert scores == {ids["small"]: (0.8, "copy"), ids["screenshot"]: (pytest.approx(0.7), "copy"),
                      ids["corner"]: (pytest.approx(0.6), "copy")}
    group = suggest("small", "screenshot", "corner")
    assert group.suggested == ids["small"]
    assert group.why == "the others are copies of it (a larger one is not of them all)"
    assert suggest("original", "collage").suggested == ids["original"]  # shown at 80%


def test_the_original_of_a_downscale_holding_the_reference_is_kept(
        service: Service, allowed: Path) -> None:
    """Holding is transitive. A corner cut from a 30% downscale is the reference (say its
    copies verify against it). The downscale holds all of it, and the original all of the
    downscale, but the small corner's keypoints match too few of the original's for the
    original to hold it by itself: the original is kept all the same."""
    img = photo("astronaut").resize((450, 450))
    small = img.resize((135, 135))
    images = {"corner": small.crop((0, 0, 94, 94)), "small": small, "original": img}
    ids = add_files(service, allowed, {k: encode(v, quality=92) for k, v in images.items()})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}
    nodes = {n: anchoring._Node(records[i], *dups.anchoring._dimensions(records[i]), 0.0)
             for n, i in ids.items()}
    assert not dups.anchoring._holds(nodes["original"], nodes["corner"])
    assert dups.anchoring._holds(nodes["small"], nodes["corner"])
    assert dups.anchoring._holds(nodes["original"], nodes["small"])
    members = [Member(ids[n], n, "", 1.0 if n == "corner" else 0.9, "copy", n == "corner",
                      nodes[n].width, nodes[n].height) for n in images]
    group = dups.anchoring._suggest(nodes["corner"], members, list(nodes.values()))
    assert group.suggested == ids["original"]
    assert group.why == "largest: 450x450 px"


def test_a_crop_as_large_is_not_kept_over_the_picture_it_was_cut_from(
        service: Service, allowed: Path) -> None:
    """A centre crop keeping 85% of each side has 72% of the original's pixels: as large
    by ``SMALLER``, alike in every edit ``edits`` tells, and sharing more with the other
    copies when they are crops too. The original's keypoints place all of it inside the
    original, which shows more of the picture around it: the crop looks cropped, and the
    original is kept. A caption banner below a copy also adds picture the original lacks,
    but flat, with a word on it (``content.framed``): it does not make the original look
    cropped from it."""
    img = photo("chelsea")
    w, h = img.size
    crop = img.crop((w * 15 // 200, h * 15 // 200, w - w * 15 // 200, h - h * 15 // 200))
    banner = Image.new("RGB", (w, h * 6 // 5), "white")
    banner.paste(img, (0, 0))
    ImageDraw.Draw(banner).text((w // 2, h * 11 // 10), "SALE", fill="black", anchor="mm",
                                font=ImageFont.load_default(size=h // 8))
    images = {"crop": crop, "original": img, "banner": banner}
    ids = add_files(service, allowed, {k: encode(v, quality=90) for k, v in images.items()})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}

    def node(name: str, shared: float) -> anchoring._Node:
        return anchoring._Node(records[ids[name]], *dups.anchoring._dimensions(records[ids[name]]),
                                shared)

    def suggest(*nodes: anchoring._Node) -> Group:
        members = [Member(n.record.id, n.record.key, "", 0.9, "copy", False, n.width,
                          n.height) for n in nodes]
        return dups.anchoring._suggest(nodes[0], members, nodes)

    group = suggest(node("crop", 2.0), node("original", 1.0))
    assert group.suggested == ids["original"]
    assert group.why == "least edited: 1 of the other 1 as large look cropped"
    assert suggest(node("original", 2.0), node("banner", 1.0)).suggested == ids["original"]


@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_a_crop_into_margins_without_keypoints_looks_cropped(
        service: Service, allowed: Path, name: str) -> None:
    """A centre crop keeping 84% of each side of a photo whose outer tenth is soft, with
    few keypoints: the keypoints of both lie in the sharp middle, which the crop fills as
    the original does, but the crop's whole frame fills 71% of the original's."""
    img = photo(name)
    w, h = img.size
    original = img.filter(ImageFilter.GaussianBlur(8))
    original.paste(img.crop((w // 10, h // 10, w - w // 10, h - h // 10)), (w // 10, h // 10))
    crop = original.crop((w * 2 // 25, h * 2 // 25, w - w * 2 // 25, h - h * 2 // 25))
    ids = add_files(service, allowed, {"crop": encode(crop, quality=92),
                                       "original": encode(original, quality=92)})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}
    nodes = {n: anchoring._Node(records[i], *dups.anchoring._dimensions(records[i]), 2.0 - k)
             for k, (n, i) in enumerate(ids.items())}
    assert dups.anchoring._cropped(nodes["crop"], nodes["original"])
    assert not dups.anchoring._cropped(nodes["original"], nodes["crop"])
    members = [Member(ids[n], n, "", 0.9, "copy", False, nodes[n].width, nodes[n].height)
               for n in ids]
    group = dups.anchoring._suggest(nodes["crop"], members, list(nodes.values()))
    assert group.suggested == ids["original"]
    assert group.why.startswith("least edited: 1 of the other 1 as large look cropped")


def test_a_copy_turned_within_its_frame_looks_turned(service: Service, allowed: Path) -> None:
    """A photo turned 10 degrees (bicubic, black corners) or 20 (bilinear, white corners)
    within its frame: the keypoints say one is turned against the other, and the fill
    beyond the other's frame says which, however much detail resampling left. A picture on a
    plain ground is plain beyond the other's frame both ways: neither looks turned; nor does
    it against a turned crop of it, plain beyond the crop's frame. A copy turned less than
    ``_TURNED`` is not judged."""
    chelsea, coffee = photo("chelsea"), photo("coffee")
    ground = Image.new("RGB", chelsea.size, "white")
    ground.paste(coffee.resize((chelsea.width // 2, chelsea.height // 2)),
                 (chelsea.width // 4, chelsea.height // 4))
    images = {
        "chelsea": chelsea,
        "chelsea-10": chelsea.rotate(10, Image.Resampling.BICUBIC),
        "chelsea-3": chelsea.rotate(3, Image.Resampling.BICUBIC),
        "coffee": coffee,
        "coffee-20": coffee.rotate(-20, Image.Resampling.BILINEAR, fillcolor="white"),
        "ground": ground,
        "ground-10": ground.rotate(10, Image.Resampling.BILINEAR, fillcolor="white"),
    }
    w, h = ground.size
    images["ground-10-crop"] = images["ground-10"].crop((w // 8, h // 8, w - w // 8, h - h // 8))
    ids = add_files(service, allowed, {k: encode(v, quality=92) for k, v in images.items()})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}
    nodes = {n: anchoring._Node(records[i], *dups.anchoring._dimensions(records[i]), 0.0)
             for n, i in ids.items()}
    looks = {i: dups.anchoring._look(i) for i in ids.values()}

    def turned(node: str, other: str) -> bool:
        return dups.anchoring._turned(nodes[node], nodes[other], looks)

    assert turned("chelsea-10", "chelsea") and not turned("chelsea", "chelsea-10")
    assert turned("coffee-20", "coffee") and not turned("coffee", "coffee-20")
    assert not turned("ground-10", "ground") and not turned("ground", "ground-10")
    assert not turned("chelsea-3", "chelsea") and not turned("chelsea", "chelsea-3")
    # the plain ground beyond a turned crop is no fill of the original's
    assert not turned("ground", "ground-10-crop")
    members = [Member(ids[n], n, "", 0.9, "copy", False, nodes[n].width, nodes[n].height)
               for n in ("chelsea-10", "chelsea")]
    shares_more = [replace(nodes["chelsea-10"], shared=2.0), nodes["chelsea"]]
    group = dups.anchoring._suggest(shares_more[0], members, shares_more)
    assert group.suggested == ids["chelsea"]
    assert group.why == "least edited: 1 of the other 1 as large look turned"


def test_a_reference_of_unknown_size_is_held_by_no_larger_copy(service: Service,
                                                                allowed: Path) -> None:
    """A reference whose pixel size could not be read (0 x 0: neither its file nor its
    thumbnail) is not replaced by a larger member, however well their keypoints match:
    nothing says how much of it that member holds (``containment.shares`` of a frame
    without area is 0). The same member holds the reference once its size is known."""
    img = photo("chelsea")
    small = img.resize((img.width * 2 // 5, img.height * 2 // 5))
    ids = add_files(service, allowed, {"small": encode(small, quality=90),
                                       "original": encode(img, quality=90)})
    dups = Duplicates(service)
    records = {r.id: r for r in service.store.with_ids(sorted(ids.values()))}
    original = anchoring._Node(records[ids["original"]], img.width, img.height, 0.0)
    known = anchoring._Node(records[ids["small"]], small.width, small.height, 0.0)
    unknown = anchoring._Node(records[ids["small"]], 0, 0, 0.0)
    assert dups.anchoring._holds(original, known)
    assert not Duplicates(service).anchoring._holds(original, unknown)


def test_groups_are_anchored_not_chained_through_a_smaller_copy(
        service: Service, photos: dict[str, bytes]) -> None:
    """Pairs a~b, b~c, c~d (and no other) chain into one component of four; c is far
    smaller than b (a crop, a tile), so d, a copy of c, need not show the rest of b: a
    group holds only what is verified against its reference, or against a copy as large."""
    small = photo("rocket").resize((120, 80))
    images = {"coffee": photos["coffee"], "chelsea": photos["chelsea"],
              "rocket-small": encode(small, quality=90), "camera": photos["camera"]}
    names_ = list(images)
    ids = {n: service.add(images[n], key=n).id for n in names_}
    dups = Duplicates(service)
    dups.verdicts.save(pair(ids[x], ids[y], "copy" if j == i + 1 else "distinct", 0.8, "copy")
                       for i, x in enumerate(names_) for j, y in enumerate(names_) if i < j)
    groups = names(dups.groups(), ids)
    assert len(groups) == 1 and len(groups[0]) == 3
    # a reference with its two copies; the ends of the chain never meet
    assert groups[0][0] in ("chelsea", "rocket-small")
    assert not {"coffee", "camera"} <= set(groups[0])


def test_a_copy_of_a_copy_as_large_as_the_reference_joins_its_group(
        service: Service, photos: dict[str, bytes]) -> None:
    """a~b, b~c, c~d, all about as large: d was edited from c, itself a whole-frame copy of
    b, so d is a copy of b though not verified against it; unless a person said it is not."""
    names_ = ["coffee", "chelsea", "rocket", "camera"]
    ids = {n: service.add(photos[n], key=n).id for n in names_}
    dups = Duplicates(service)
    dups.verdicts.save(pair(ids[x], ids[y], "copy" if j == i + 1 else "distinct", 0.8, "copy")
                       for i, x in enumerate(names_) for j, y in enumerate(names_) if i < j)
    groups = names(dups.groups(), ids)
    assert [sorted(g) for g in groups] == [sorted(names_)]
    assert all(m.match == "copy" and m.score == pytest.approx(0.8)
               for m in dups.groups()[0].members[1:])
    # the reference (chelsea or rocket) reaches the far end (camera or coffee) through
    # the other: each end is no copy of the reference next to the other end
    dups.verdicts.save([pair(ids["chelsea"], ids["camera"], "dismissed"),
                        pair(ids["rocket"], ids["coffee"], "dismissed")])
    assert all(len(g) < len(names_) for g in names(dups.groups(), ids))


def test_a_copy_of_the_original_a_small_reference_was_cut_from_joins_its_group(
        service: Service, allowed: Path) -> None:
    """original~rotated, rotated~crop, crop~flipped crop (and no other pair): a crop of the
    rotated copy and the crop's own mirror image verify against the crop, and the rotated
    copy, clearly larger, holds the whole crop (``_holds``), so the original, a copy of the
    rotated one, is a copy of the crop's picture too: one group of four (anchored on the
    rotated copy or the original, the flipped crop was left out; on the crop, the original)."""
    img = photo("astronaut").resize((400, 400))
    rotated = img.rotate(10, resample=Image.Resampling.BICUBIC)
    crop = rotated.crop((100, 100, 300, 300))
    images = {"original": img, "rotated": rotated, "crop": crop,
              "crop-flipped": ImageOps.mirror(crop)}
    ids = add_files(service, allowed, {k: encode(v, quality=90) for k, v in images.items()})
    dups = Duplicates(service)
    copies = {("original", "rotated"), ("rotated", "crop"), ("crop", "crop-flipped")}
    dups.verdicts.save(pair(ids[x], ids[y], "copy" if (x, y) in copies else "distinct", 0.8,
                            "copy") for i, x in enumerate(images) for j, y in enumerate(images)
                       if i < j)
    groups = dups.groups()
    assert [sorted(g) for g in names(groups, ids)] == [sorted(images)]
    assert all(m.score == pytest.approx(0.8) for m in groups[0].members[1:])


def test_dismissed_groups_never_come_back(service: Service, make_service: Callable[..., Service],
                                          settings: Settings, allowed: Path,
                                          photos: dict[str, bytes]) -> None:
    ids = add_files(service, allowed, {"chelsea": photos["chelsea"],
                                       "chelsea-q20": encode(photo("chelsea"), quality=20),
                                       "chelsea-small": edited_copy(photo("chelsea"))})
    dups = Duplicates(service)
    dups.scan()
    assert sorted(names(dups.groups(), ids)[0]) == ["chelsea", "chelsea-q20", "chelsea-small"]
    assert dups.dismiss([ids["chelsea"], ids["chelsea-q20"], ids["chelsea-small"]]) == 3
    assert dups.groups() == []
    with pytest.raises(InvalidParameter, match="2 to 100 different ids"):
        dups.dismiss([ids["chelsea"]])
    with pytest.raises(NotFound):
        dups.dismiss([ids["chelsea"], 12345])
    # A fresh scan (the watermark reset by hand) does not propose them again either.
    dups.verdicts.set_scanned(0)
    assert dups.scan().copies == 0
    assert dups.groups() == []


def test_more_like_this_uses_the_stored_record(service: Service,
                                               photos: dict[str, bytes]) -> None:
    ids = {name: service.add(data, key=name).id for name, data in photos.items()}
    small = service.add(edited_copy(photo("coffee")), key="coffee-small").id
    hits = search_stored(service, ids["coffee"], limit=3)
    assert hits[0].id == small and hits[0].match == "copy"
    assert ids["coffee"] not in {h.id for h in hits} and len(hits) == 3
    assert search_stored(service, ids["coffee"], limit=10, min_score=0.5) == hits[:1]
    # the same hits as a search with the file, but for the record itself
    by_file = service.search(photos["coffee"], limit=4)
    assert [h.id for h in by_file][1:] == [h.id for h in hits]
    with pytest.raises(NotFound, match="no record with id 42"):
        search_stored(service, 42)
    with pytest.raises(InvalidParameter, match="limit"):
        search_stored(service, ids["coffee"], limit=0)


def test_more_like_this_compares_pixels_where_keypoints_put_them_as_a_search_does(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, data in photos.items():
        service.add(data, key=name)
    turned = service.add(encode(rotated(photo("rocket")), quality=70), key="turned").id
    hit = search_stored(service, turned, limit=1)[0]
    assert (hit.key, hit.match) == ("rocket", "copy"), hit
    monkeypatch.setattr(scoring, "COPY_ALIGNED", 1.01)
    assert search_stored(service, turned, limit=1)[0].match == "similar"


def crossing_keeps(first: Duplicates, second: Duplicates, ids: dict[str, int],
                   monkeypatch: pytest.MonkeyPatch) -> int:
    """Two reviewers, each keeping what the other deletes, decide at the same moment (each
    reads which images to keep are stored, then deletes): how many of the two are left."""
    met = threading.Barrier(2, timeout=2)
    for dups in (first, second):
        store = dups.service.store
        read = store.existing

        def existing(found: Any, read: Callable[[Any], set[int]] = read) -> set[int]:
            with suppress(threading.BrokenBarrierError):
                met.wait()  # both read before either deletes, unless kept apart
            return read(found)

        monkeypatch.setattr(store, "existing", existing)
    a, b = ids.values()
    version = first.version()
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda d, k, o: d.keep([(k, [o])], version),
                                (first, second), (a, b), (b, a)))
    assert sorted(r.deleted for r in reports) == [0, 1]
    return second.service.store.count(f"id in {[a, b]}")


def test_two_keeps_crossing_never_delete_both(service: Service, photos: dict[str, bytes],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pages' "Keep only this" crossing each other (one keeps the original, the other
    the copy) in one process, as two apps on one collection decide."""
    ids = {n: service.add(photos[n], key=n).id for n in PHOTOS[:2]}
    assert crossing_keeps(Duplicates(service), Duplicates(service), ids, monkeypatch) == 1


def test_a_keep_waits_so_long_for_a_decision_hung_on_another_replica(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica's decision hangs (its deletes stuck on a server it lost) and holds the
    decisions' lock: a keep here answers 409 after ``KEEP_WAIT`` rather than hold its
    request and a worker thread for ever, deletes nothing, and this replica's groups are
    listed while it waits."""
    ids = {n: service.add(photos[n], key=n).id for n in PHOTOS[:2]}
    dups, settings = Duplicates(service), service.settings
    hung = hold(settings.record_path, f".{settings.collection}.keep.lock")
    assert hung.stdout is not None
    waiting, poll = threading.Event(), folder_lock.time.sleep
    monkeypatch.setattr(folder_lock.time, "sleep", lambda s: (waiting.set(), poll(s)))
    try:
        assert hung.stdout.readline() == "held\n"
        a, b = ids.values()
        monkeypatch.setattr(duplicates, "KEEP_WAIT", 0.2)
        with pytest.raises(Busy, match="another decision on these groups"):
            dups.keep([(a, [b])], dups.version())
        assert service.store.count(f"id in {[a, b]}") == 2
        # a keep waiting (here as long as the holder holds) leaves the listing free
        monkeypatch.setattr(duplicates, "KEEP_WAIT", 60.0)
        waiting.clear()
        with ThreadPoolExecutor(1) as pool:
            keeping = pool.submit(dups.keep, [(a, [b])], dups.version())
            assert waiting.wait(10)
            assert dups.groups() == [] and not keeping.done()
            tell(hung, "")  # its note
            tell(hung, "go on")  # it lets go
            assert keeping.result().deleted == 1  # once it is gone
    finally:
        hung.kill()
        hung.wait()


def test_a_keep_on_groups_that_still_show_a_deleted_image_deletes_none_of_its_copies(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the listing's version changed, a keep deletes what the groups as they now stand
    put beside the image kept. A replica sees another's delete up to ~0.4 s late, its groups
    still holding the deleted image then: whether the image to keep is stored is read
    ``Strong``."""
    ids = {"coffee": service.add(photos["coffee"], key="coffee").id,
           "coffee-small": service.add(edited_copy(photo("coffee")), key="coffee-small").id}
    dups = Duplicates(service)
    dups.scan()
    assert names(dups.groups(), ids) == [["coffee", "coffee-small"]]
    before = dups._state()
    assert service.delete_ids([ids["coffee"]]) == 1  # through another replica
    monkeypatch.setattr(dups, "_state", lambda: before)  # not seen here yet
    report = dups.keep([(ids["coffee"], [ids["coffee-small"]])], listed="stale")
    assert (report.deleted, report.left) == (0, [ids["coffee-small"]])
    assert service.store.count(f"id == {ids['coffee-small']}") == 1

def test_duplicates_on_a_milvus_server(server_settings: Settings,
                                       make_service: Callable[..., Service],
                                       tmp_path: Path, photos: dict[str, bytes]) -> None:
    """Two replicas on one server: what one scans and dismisses, the other sees."""
    one, two = make_service(server_settings), make_service(server_settings)
    images = {n: photos[n] for n in PHOTOS[:4]}
    images["astronaut-small"] = edited_copy(photo("astronaut"))
    images["coffee-q20"] = encode(photo("coffee"), quality=20)
    ids = {name: one.add(data, key=name).id for name, data in images.items()}
    first = Duplicates(one)
    assert first.groups() == []
    report = first.scan()
    assert report.scanned == len(images)
    other = Duplicates(two)
    assert other.pending() == 0
    groups = names(other.groups(), ids)
    assert sorted(map(sorted, groups)) == [["astronaut", "astronaut-small"],
                                           ["coffee", "coffee-q20"]]
    assert sorted(map(sorted, names(first.groups(), ids))) == sorted(map(sorted, groups))
    other.dismiss([ids["coffee"], ids["coffee-q20"]])
    # the first replica's groups, kept since it made them, are made again
    assert names(first.groups(), ids) == [["astronaut", "astronaut-small"]]
    hits = search_stored(two, ids["astronaut"], limit=2, min_score=0.5)
    assert [h.id for h in hits] == [ids["astronaut-small"]]


def test_a_scan_on_a_server_checks_another_replicas_add_whose_id_is_below_the_last_scanned(
        server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica whose clock runs 10 s late adds a copy after a scan: its id is below the
    highest the scan checked, and the next scan checks it all the same."""
    one, two = make_service(server_settings), make_service(server_settings)
    ids = {n: one.add(photos[n], key=n).id for n in PHOTOS[:3]}
    dups = Duplicates(one)
    dups.scan()
    taken = two.store.ids.take
    monkeypatch.setattr(two.store.ids, "take", lambda n: [i - (10_000 << 12) for i in taken(n)])
    ids["coffee-small"] = two.add(edited_copy(photo("coffee")), key="coffee-small").id
    assert ids["coffee-small"] < max(ids.values())
    time.sleep(FRESH)  # as another replica's write is seen: at most this late
    report = dups.scan()
    assert (report.scanned, report.late) == (0, len(ids))  # all within 30 s of the newest
    assert sorted(map(sorted, names(dups.groups(), ids))) == [["coffee", "coffee-small"]]


def test_one_scan_at_a_time(service: Service, photos: dict[str, bytes],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Per collection, whichever replica asks (another app here; another process:
    ``tests/test_folder_lock.py``)."""
    service.add(photos["coffee"], key="coffee")
    checking, go_on = hold_scans(monkeypatch)
    first, other = Duplicates(service), Duplicates(service)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(first.scan)
        assert checking.wait(60)
        for dups in (first, other):
            with pytest.raises(Busy, match=r"already running \(.*, 0 of 1 images checked\)"):
                dups.scan()
        go_on.set()
        assert running.result().scanned == 1
    assert other.scan().scanned == 0


@pytest.mark.parametrize("late", [False, True])
def test_pixel_sizes_come_from_the_file_header(
        tmp_path: Path, make_service: Callable[[Settings], Service], late: bool) -> None:
    """Only a header is read: a file larger than MAX_UPLOAD_BYTES still gives its real
    size, not its thumbnail's (256 px), and a header past ``HEADER`` (large ICC segments
    before the JPEG's frame) is found by reading the whole file (within the limit)."""
    coffee = photo("coffee")
    data = encode(coffee, icc_profile=bytes(anchoring.HEADER + 1000)) if late else encode(coffee)
    assert (data.index(b"\xff\xc0") > anchoring.HEADER) == late  # where the frame's header is
    allowed = tmp_path / "allowed"
    service = make_service(Settings(data_dir=tmp_path / "data", image_allowed_roots=str(allowed),
                                    max_upload_bytes=len(data) if late else 1000))
    ids = add_files(service, allowed, {"coffee": data})
    [record] = service.store.with_ids(list(ids.values()))
    assert Duplicates(service).anchoring._dimensions(record) == coffee.size == (600, 400)


def test_two_replicas_keeps_crossing_never_delete_both(
        server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same on a Milvus server, through two replicas sharing ``RECORD_DIR``: neither
    sees the other's delete unless they decide one after the other."""
    one, two = make_service(server_settings), make_service(server_settings)
    ids = {n: one.add(photos[n], key=n).id for n in PHOTOS[:2]}
    assert crossing_keeps(Duplicates(one), Duplicates(two), ids, monkeypatch) == 1

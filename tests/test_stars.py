"""Point fields found by their stars (``bogv.model.stars``, ``bogv.starfields``): a star
field shrunk and drawn over, which its vector and keypoints alone do not find."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bogv import service as service_module
from bogv import starfields
from bogv.config import Settings
from bogv.copy_checks import Checks
from bogv.duplicates import Duplicates
from bogv.model import geometry, scoring, stars
from bogv.service import STARS, Service, record_stars
from bogv.similar import search_stored
from bogv.starfields import LEAST_VOTES, StarFields

from .images import captioned, encode, photo, screenshot, screenshot_at, text_box, text_over

_SIDE = 250


def _tiles() -> dict[str, Image.Image]:
    """Sixteen 250 px tiles of the Hubble deep field: look-alike point fields."""
    sky = photo("hubble_deep_field")
    return {f"t{i}{j}": sky.crop((x, y, x + _SIDE, y + _SIDE))
            for i, x in enumerate(range(0, sky.width - _SIDE + 1, _SIDE))
            for j, y in enumerate(range(0, sky.height - _SIDE + 1, 207))}


def _shared(img: Image.Image) -> Image.Image:
    """Three lines of text over it, shrunk to half and saved as a JPEG of quality 60: a
    meme of it passed around."""
    small = text_over(img).resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
    return Image.open(io.BytesIO(encode(small, quality=60))).convert("RGB")


def _points(img: Image.Image) -> bytes:
    return stars.points(geometry.grey(img))


def _stored(service: Service, tiles: dict[str, Image.Image], *, but: str = "") -> dict[str, int]:
    """The tiles (all ``but`` one) stored under their names: their ids."""
    return {name: service.add(encode(tile, quality=92), key=name).id
            for name, tile in tiles.items() if name != but}


@pytest.fixture(scope="module")
def tiles() -> dict[str, Image.Image]:
    return _tiles()


def test_a_point_field_keeps_its_brightest_points_and_a_photo_or_letters_none() -> None:
    side, xy = stars.unpack(_points(photo("hubble_deep_field")))
    assert side == geometry.SIDE and len(xy) == stars.STARS
    assert xy.min() >= 0 and xy.max() < geometry.SIDE
    for name in ("coffee", "astronaut", "moon", "camera"):
        assert _points(photo(name)) == b"", name
    # Letters on black are bright and dark too, but strokes: no point stands out of its ring.
    assert _points(text_over(Image.new("RGB", (400, 300)))) == b""


def test_how_dark_a_picture_is_is_its_median_grey_level() -> None:
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (1, 2), (3, 3), (191, 256), (256, 200)]:
        for grey in (rng.integers(0, 256, shape, dtype=np.uint8),
                     (rng.integers(0, 3, shape) * 40).astype(np.uint8)):  # ties at 40
            assert stars._median(grey) == float(np.median(grey)), shape


def test_triangles_keep_their_shape_and_pair_their_corners_under_shift_scale_and_turn() -> None:
    data = _points(photo("hubble_deep_field"))
    side, xy = stars.unpack(data)
    turn = np.deg2rad(30)
    rotation = 0.5 * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    moved = xy @ rotation.T + [40, 7]
    moved_data = np.concatenate([[side / 2], moved.ravel()]).astype(np.float32).tobytes()
    (shape, corners), (shape2, corners2) = stars.codes(data), stars.codes(moved_data)
    assert len(shape) > 2 * stars.STARS
    np.testing.assert_allclose(shape, shape2, atol=1e-4)
    np.testing.assert_allclose(corners @ rotation.T + [40, 7], corners2, atol=1e-2)


def test_the_tile_a_shared_copy_was_cut_from_is_named_with_its_transform(
        tiles: dict[str, Image.Image]) -> None:
    names = list(tiles)
    fields = StarFields()
    fields.add((i, _points(tiles[n])) for i, n in enumerate(names))
    assert len(fields) == len(names)
    found = fields.best(_points(_shared(tiles["t23"])))
    assert found is not None and names[found.id] == "t23" and found.votes >= LEAST_VOTES
    # Query px (half size) to stored px: twice as large, not turned.
    np.testing.assert_allclose(found.matrix[:, :2], [[2, 0], [0, 2]], atol=0.05)
    fields.drop([names.index("t23")])
    assert fields.best(_points(_shared(tiles["t23"]))) is None  # no look-alike agrees
    assert fields.best(_points(photo("coffee"))) is None


def test_a_field_added_after_the_grid_was_built_is_named_as_well(
        tiles: dict[str, Image.Image]) -> None:
    names = list(tiles)
    fields = StarFields()
    fields.add((i, _points(tiles[n])) for i, n in enumerate(names) if n != "t02")
    assert fields.best(_points(_shared(tiles["t02"]))) is None  # builds the grid
    fields.add([(99, _points(tiles["t02"]))])  # too few triangles to rebuild it
    found = fields.best(_points(_shared(tiles["t02"])))
    assert found is not None and found.id == 99
    # The duplicate scan leaves out the image asking, in the grid or added since.
    assert fields.best(_points(_shared(tiles["t02"])), leave_out={99}) is None
    found = fields.best(_points(tiles["t23"]), leave_out={names.index("t23")})
    assert found is None or found.id != names.index("t23")


def test_a_rebuilt_grid_names_fields_it_held_and_fields_added_but_none_dropped(
        tiles: dict[str, Image.Image]) -> None:
    """Fields added since the grid was built, past ``_REBUILT`` of it, are sorted into it
    with those it held (less the dropped ones) at the next look-up; the grid keeps 40
    bytes a triangle (corners, shape, cell and field), not their centred corners too."""
    names = list(tiles)
    half = len(names) // 2
    fields = StarFields()
    fields.add((i, _points(tiles[n])) for i, n in enumerate(names[:half]))
    assert fields.best(_points(tiles[names[1]])) is not None  # builds the grid
    built = fields._grid
    fields.drop([1])
    fields.add((i, _points(tiles[n])) for i, n in enumerate(names) if i >= half)
    for i in (2, len(names) - 1):
        found = fields.best(_points(_shared(tiles[names[i]])))
        assert found is not None and found.id == i
    grid = fields._grid
    assert grid is not None and grid is not built and not fields._pending
    owners = grid.ids[grid.places]  # each triangle's field
    assert 1 not in owners and set(owners) == set(range(len(names))) - {1}
    assert sum(a.nbytes for a in vars(grid).values() if isinstance(a, np.ndarray)) == (
        40 * len(grid.keys) + grid.ids.nbytes)
    found = fields.best(_points(_shared(tiles[names[1]])))
    assert found is None or found.id != 1


def test_guided_matches_where_a_given_transform_puts_them_as_where_its_own_does() -> None:
    img = photo("chelsea")
    stored = geometry.keypoints(img)
    pool = geometry.pool(captioned(img)[0], 0.0)
    seed = geometry.match(pool, stored)
    assert seed is not None
    assert geometry.guided(pool, stored, seed.matrix) == geometry.guided(pool, stored) > 0


def test_a_shared_star_field_is_found_and_called_a_copy_by_its_stars(
        settings: Settings, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_service(settings)
    ids = _stored(first, tiles)
    photo_id = first.add(encode(photo("coffee")), key="coffee").id
    assert first.files.read(ids["t23"], STARS) and first.files.read(photo_id, STARS) is None
    first.close()
    service = make_service(settings)  # fills its index of star fields from the records
    query = encode(_shared(tiles["t23"]), quality=95)
    hits = service.search(query, 3)
    assert (hits[0].key, hits[0].match) == ("t23", "copy")
    monkeypatch.setattr(Service, "starred", lambda *a, **k: lambda: None)
    assert service.search(query, 3)[0].match != "copy"  # nothing else tells it
    monkeypatch.undo()
    service.delete_keys(["t23"])
    assert ids["t23"] not in service.star_fields
    assert all(h.key != "t23" for h in service.search(query, 3))


def test_stars_that_agree_count_as_the_matches_of_a_copy_if_some_keypoints_match_too() -> None:
    votes, few, need = scoring.STAR_VOTES, scoring.LEAST_INLIERS, 45.0
    assert scoring.star_inliers(votes - 1, few + 10, need) == few + 10
    assert scoring.star_inliers(votes, few - 1, need) == few - 1
    assert scoring.star_inliers(votes, few, need) == need
    assert scoring.star_inliers(2 * votes, few, need) == 2 * need  # more votes score higher
    assert scoring.star_inliers(votes, 100, need) == 100


def test_a_star_field_whose_keypoints_a_box_hides_is_a_copy_by_its_stars_and_a_neighbour_not(
        settings: Settings, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(settings)
    _stored(service, tiles, but="t12")  # t12 shares a sixth of its stars with t11 and t13
    query = encode(text_box(tiles["t13"])[0], quality=90)
    hit = service.search(query, 1)[0]
    assert (hit.key, hit.match) == ("t13", "copy")
    monkeypatch.setattr(scoring, "STAR_VOTES", math.inf)
    assert service.search(query, 1)[0].match != "copy"  # its keypoints alone do not tell it
    monkeypatch.undo()
    for edited in (tiles["t12"], text_box(tiles["t12"])[0], text_over(tiles["t12"])):
        assert service.search(encode(edited, quality=90), 1)[0].match == "similar"


def test_the_duplicate_scan_finds_a_shared_star_field_by_its_stars(
        settings: Settings, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(settings)
    ids = _stored(service, tiles)
    ids["shared"] = service.add(encode(_shared(tiles["t23"]), quality=95), key="shared").id

    def scanned() -> set[tuple[int, int]]:
        dups = Duplicates(service, threads=1)
        dups.forget()
        dups.scan()
        return {(p.a, p.b) for p in dups.verdicts.pairs("copy")}

    # Tiles sharing a band of stars with the ones above and below them are no pair.
    assert scanned() == {tuple(sorted((ids["t23"], ids["shared"])))}
    monkeypatch.setattr(Checks, "by_stars", lambda *args: None)
    assert scanned() == set()  # nothing else tells them


def test_more_like_a_stored_shared_star_field_finds_its_original_by_its_stars(
        settings: Settings, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(settings)
    _stored(service, tiles)
    shared = service.add(encode(_shared(tiles["t23"]), quality=95), key="shared").id
    hit = search_stored(service, shared, 3)[0]
    assert (hit.key, hit.match) == ("t23", "copy")
    monkeypatch.setattr(Service, "starred", lambda *args, **kwargs: lambda: None)
    assert search_stored(service, shared, 3)[0].match != "copy"


def test_a_query_s_point_field_is_its_first_view_that_is_one(
        tiles: dict[str, Image.Image]) -> None:
    bright, sky = geometry.grey(photo("coffee")), geometry.grey(tiles["t01"])
    seen, grey = stars.first_field([bright, sky])
    assert seen == stars.points(sky) != b"" and grey is sky
    assert stars.first_field([bright]) == (b"", bright)


def test_a_screenshot_of_a_star_field_under_a_box_is_a_copy_by_the_stars_inside_it(
        settings: Settings, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(settings)
    _stored(service, tiles)
    query = encode(screenshot(text_box(tiles["t01"])[0]), quality=90)
    hit = service.search(query, 1)[0]
    assert (hit.key, hit.match) == ("t01", "copy")
    monkeypatch.setattr(Service, "starred", lambda *args, **kwargs: lambda: None)
    assert service.search(query, 1)[0].match != "copy"


def test_a_record_keeps_the_stars_of_the_star_field_inside_a_bright_window(
        tiles: dict[str, Image.Image]) -> None:
    window, (left, top, right, bottom) = screenshot_at(tiles["t01"])
    grey = geometry.grey(window)
    assert stars.points(grey) == b""  # the window is bright
    side, xy = stars.unpack(record_stars(grey))
    f = max(grey.shape) / window.width
    assert side == max(grey.shape) and len(xy) == stars.STARS
    assert (xy.min(0) >= np.array([left, top]) * f - 1).all()
    assert (xy.max(0) <= np.array([right, bottom]) * f + 1).all()
    sky = geometry.grey(tiles["t01"])
    assert record_stars(sky) == stars.points(sky)
    for name in ("coffee", "astronaut", "camera"):  # bright, or dark with no field inside
        assert record_stars(geometry.grey(photo(name))) == b""


def test_the_duplicate_scan_finds_a_star_field_s_screenshot_by_the_stars_its_record_keeps(
        tmp_path: Path, make_service: Callable[[Settings], Service],
        tiles: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch) -> None:
    shot = encode(screenshot(text_box(tiles["t01"])[0]), quality=90)

    def scanned(data: str) -> tuple[set[tuple[int, int]], tuple[int, int]]:
        service = make_service(Settings(data_dir=tmp_path / data))
        ids = _stored(service, tiles)
        pair = tuple(sorted((ids["t01"], service.add(shot, key="shot").id)))
        dups = Duplicates(service, threads=1)
        dups.scan()
        return {(p.a, p.b) for p in dups.verdicts.pairs("copy")}, pair

    found, pair = scanned("with")
    assert found == {pair}
    monkeypatch.setattr(service_module, "record_stars", stars.points)
    found, _ = scanned("without")
    assert found == set()  # the window's record has no stars: nothing else tells them


def test_a_rebuilt_grid_holds_the_fields_added_and_not_those_dropped(
        tiles: dict[str, Image.Image]) -> None:
    names = list(tiles)
    fields = StarFields()
    fields.add((i, _points(tiles[n])) for i, n in enumerate(names))
    query = _points(_shared(tiles["t23"]))
    assert fields.best(query).id == names.index("t23")  # type: ignore[union-attr]
    fields.drop([names.index("t23")])
    fields.add((100 + i, _points(tiles[n])) for i, n in enumerate(names))  # rebuilds it
    found = fields.best(query)
    assert found is not None and found.id == 100 + names.index("t23")
    assert len(fields) == 2 * len(names) - 1 and names.index("t23") not in fields


def test_the_grid_pairs_a_shape_with_every_triangle_within_the_tolerance_and_no_other() -> None:
    """Its window of finer cells (``_FINER``) reads less than the 3 x 3 cells of one
    ``TOLERANCE`` did, and must still reach every triangle that close, across cells."""
    rng = np.random.default_rng(3)
    # shapes as ``stars.codes`` makes them, crowded so that every window holds many
    stored = rng.uniform([0.3, 0.5], [0.36, 0.56], (20_000, 2)).astype(np.float32)
    grid = starfields._Grid([(stored, np.zeros((len(stored), 3, 2), np.float32))],
                            np.arange(1), np.zeros(len(stored), np.int32))
    queries = rng.uniform([0.3, 0.5], [0.36, 0.56], (60, 2)).astype(np.float32)
    at, hit = grid.near(queries)
    gaps = np.sqrt(((queries[:, None] - grid.ratios.T[None]) ** 2).sum(axis=2))
    assert sorted(zip(at.tolist(), hit.tolist(), strict=True)) == sorted(
        zip(*(a.tolist() for a in np.nonzero(gaps <= starfields.TOLERANCE)), strict=True))
    assert len(at) > 20_000  # ~800 a query


def test_the_vote_names_the_field_that_least_votes_agree_on_among_chance_pairs() -> None:
    """Chance pairs, alone in their cells, are left out before the sort by counts of
    hashed cells (``_HASHED``); a cell with ``LEAST_VOTES`` votes wins, one fewer none."""
    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 200, (40, 3, 2)).astype(np.float32)
    turn = np.array([[0.8, -0.6], [0.6, 0.8]], np.float32)
    stored = corners @ (1.5 * turn).T + 30  # a field holding the query, larger and turned

    def vote(agreeing: int) -> tuple[int, int, np.ndarray] | None:
        noise = rng.uniform(0, 200, (20_000, 3, 2)).astype(np.float32)
        their = np.concatenate([stored[:agreeing], noise])
        at = np.concatenate([np.arange(agreeing), rng.integers(0, 40, len(noise))])
        place = np.concatenate([np.full(agreeing, 7), rng.integers(0, 5_000, len(noise))])
        ballot = starfields._Ballot(corners)
        for chunk in np.array_split(np.arange(len(at)), 3):  # cast a chunk at a time
            ballot.cast(at[chunk], their, chunk, place[chunk].astype(np.int32))
        return ballot.winner()

    found = vote(LEAST_VOTES)
    assert found is not None and found[:2] == (7, LEAST_VOTES)
    np.testing.assert_allclose(found[2], np.c_[1.5 * turn, [30, 30]], atol=1e-3)
    assert vote(LEAST_VOTES - 1) is None


def test_chance_pairs_in_cells_of_many_fields_fall_in_counters_of_their_own() -> None:
    """A look-up's pairs fill a few dozen turns and scales but thousands of fields: the
    counters of ``_spread_over`` keep apart cells that differ only in their field, so that
    chance pairs stay short of ``LEAST_VOTES`` and are left out before the sort (counters
    read from a cell's low bits gathered ~100 pairs each and left out 2%)."""
    rng = np.random.default_rng(7)
    place = rng.permutation(100_000)[:40_000].astype(np.int64)
    scale = rng.integers(-2, 3, len(place))
    turn = rng.integers(-21, 22, len(place))
    spread = starfields._spread_over(starfields._vote_cell(place, scale, turn))
    counts = np.bincount(spread, minlength=starfields._HASHED)
    assert counts.sum() == len(place)
    assert (counts[spread] >= LEAST_VOTES).mean() < 0.001


def test_centred_corners_are_the_corners_less_their_mean() -> None:
    corners = np.random.default_rng(2).uniform(0, 500, (50, 3, 2)).astype(np.float32)
    centred = starfields._centred(corners)
    expected = corners - corners.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(centred.real, expected[..., 0], atol=1e-3)
    np.testing.assert_allclose(centred.imag, expected[..., 1], atol=1e-3)


def test_the_squared_reach_pairs_what_the_distance_within_the_tolerance_pairs() -> None:
    """``near`` compares squared distances with ``_REACH``: the largest float32 whose root
    is within ``TOLERANCE``, one step above ``TOLERANCE`` squared, which would leave out
    the triangles at its very edge."""
    tolerance, reach = np.float32(starfields.TOLERANCE), starfields._REACH
    assert np.sqrt(reach) <= tolerance < np.sqrt(np.nextafter(reach, np.float32(1)))

"""Copies inside a collection: bogv's duplicate scan against the thresholds users run today.

    pip install -e ".[bench]"
    python bench/duplicates/duplicates.py                 # quality table, then the scan at --scale
    python bench/duplicates/duplicates.py --scale 10000   # the scan of 10k stored images (default)
    python bench/duplicates/duplicates.py --only quality  # or --only scale
    # keep the scale collection (it only grows) and reuse speed_corpus's cached vectors:
    python bench/duplicates/duplicates.py --only scale --scale 100000 --data-dir DIR \
        --vectors CACHE/vectors-aug2-<model id> [--store-only]

**Quality.** One collection, added through bogv (``Service.add``: vector, keypoints,
thumbnail), made of every dev image (``bench/quality/quality.py``'s data; it holds its own hard
negatives: consecutive frames of ``mvtb-data/seq``, the stereo and chessboard pairs of
``opencv-doc``, many photos of one campus, hundreds of star fields and drawings in one
style), plus, for ``--originals`` of them, planted edited copies: three each, the 14 edits
of ``bench/quality/quality_edits.py`` taken in turn, the third an edit of the first (a chain), plus
the four non-overlapping tiles of ``--tiles`` large photos (pairs that share a subject and
a source but no pixels). The truth: an original and its copies, and copies of one original
among themselves, are duplicate pairs; everything else is not, except the dev pairs
``bench/quality/related.csv`` lists as sharing pixels, with their copies and the pairs they
link through a third (``related``: left out of the counts). Every method is
scored on the same pairs: bogv (scan, then its anchored groups: a pair is predicted when
both images are in one group; also on each half of the images apart, ``half``: its
containment threshold was chosen on the calibration half only), pHash at Hamming <= 10
(imagededup's default), the plain CNN (average-pooled EfficientNet-Lite0 features) at
cosine >= 0.9 (imagededup's CNN default), and one cosine threshold on bogv's own stored
vector (immich-style): at 0.9 and at the threshold that maximises its F1 on this very
collection (an oracle, its best case).

**Scale.** ``--scale`` stored images made as ``bench/speed/speed.py`` makes them (variant
``i % 70`` of dev image ``i // 70``: crops, rotations, colour), each stored with its record
files (keypoints, thumbnail), then one full scan with its time per stage, the groups (made,
asked for again, made again after "not duplicates" for one pair, as the page asks), and
the peak memory of this process and of the Milvus Lite server it starts. Storing costs
~25 ms an image with the model; ``--vectors`` takes the vectors of exactly these images from
``speed_corpus.stored_vectors``'s cache (each part checked against the model on its first
batch), so only the record files are made. A kept ``--data-dir`` is rescanned from scratch.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "speed"))  # the dev images
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quality"))  # the edits
from quality import load, read_manifest, related_pairs
from quality_edits import EDITS
from quality_methods import _phash, avg

from bogv import imaging
from bogv.config import Settings
from bogv.duplicates import BATCH, Duplicates
from bogv.model.preprocess import embed_tensor
from bogv.service import Incoming, Service, build_service, record_points
from bogv.thumbs import make_thumbnail

SEED = 16
EDIT_NAMES = list(EDITS)


def _jpeg(img: imaging.Image.Image, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _tiles(img: imaging.Image.Image) -> list[imaging.Image.Image]:
    w, h = img.size
    return [img.crop((x, y, x + w // 2, y + h // 2)) for x in (0, w // 2) for y in (0, h // 2)]


Named = list[tuple[str, imaging.Image.Image]]


def build_collection(data: Path, originals: int, tiles: int, limit: int
                     ) -> tuple[Named, dict[str, str], dict[str, str]]:
    """(name, image) of every stored image; the family of each planted image (its
    original's name); the edit that made each copy."""
    items = read_manifest(data)
    if limit:
        items = random.Random(SEED).sample(items, limit)
    rng = random.Random(SEED)
    order = list(range(len(items)))
    rng.shuffle(order)
    planted = set(order[:originals])
    tiled = [i for i in order[originals:] if items[i].source == "plasma-workspace-wallpapers"
             or items[i].source == "ukui-wallpapers"][:tiles]
    images, family, edit_of = [], {}, {}
    k = 0
    for i, item in enumerate(items):
        img = load(data, item)
        if i in tiled:
            images += [(f"{item.path}#tile{t}", tile) for t, tile in enumerate(_tiles(img))]
            continue
        images.append((item.path, img))
        if i not in planted:
            continue
        family[item.path] = item.path
        first = None
        for c in range(3):
            name = EDIT_NAMES[k % len(EDIT_NAMES)]
            k += 1
            base = first if c == 2 and first is not None else img
            copy = EDITS[name](base, random.Random(f"{SEED}:{item.path}:{c}"))
            if c == 0:
                first = copy
            label = f"{EDIT_NAMES[(k - 3) % len(EDIT_NAMES)]} + {name}" if c == 2 else name
            copy_name = f"{item.path}#copy{c}"
            images.append((copy_name, copy))
            family[copy_name] = item.path
            edit_of[copy_name] = label if c == 2 else name
    return images, family, edit_of


def half(name: str, family: dict[str, str]) -> int:
    """0: the calibration half (``bogv.containment.COVERED`` was chosen on it), 1: the test
    half; by the hash of the dev image a stored image comes from, so an original and its
    copies fall in one half. A pair of two images falls in the lower of their halves."""
    base = family.get(name, name.split("#")[0])
    return int(hashlib.sha256(base.encode()).hexdigest(), 16) % 2


def split(predicted: set[tuple[str, str]], family: dict[str, str], edit_of: dict[str, str],
          which: int) -> tuple[set[tuple[str, str]], dict[str, str], dict[str, str]]:
    """The predicted pairs, families and edits of one half."""
    def side(a: str, b: str) -> int:
        return min(half(a, family), half(b, family))

    return ({p for p in predicted if side(*p) == which},
            {n: f for n, f in family.items() if half(n, family) == which},
            {n: e for n, e in edit_of.items() if half(n, family) == which})


def related(names: list[str], family: dict[str, str]) -> set[tuple[str, str]]:
    """Pairs left out of the counts: images from dev images ``related.csv`` links, directly
    or through a third (two recolourings of one drawing), and their planted copies."""
    def base(name: str) -> str:
        return family.get(name, name.split("#")[0])

    linked = [frozenset(c) for c in _components_of(set(related_pairs()))]
    component = {m: c for c in linked for m in c}
    members: dict[frozenset[str], list[str]] = defaultdict(list)
    for name in names:
        if base(name) in component:
            members[component[base(name)]].append(name)
    return {tuple(sorted((a, b))) for group in members.values() for a, b in combinations(group, 2)
            if base(a) != base(b)}


def pairs_of_groups(groups: list[list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for g in groups for p in combinations(g, 2)}


def score(predicted: set[tuple[str, str]], family: dict[str, str], edit_of: dict[str, str],
          excluded: set[tuple[str, str]]) -> dict[str, float]:
    truth = {tuple(sorted(p)) for fam in _families(family).values() for p in combinations(fam, 2)}
    predicted = predicted - excluded
    tp = len(predicted & truth)
    out = {"precision": tp / len(predicted) if predicted else 1.0,
           "recall": tp / len(truth) if truth else 1.0, "false pairs": len(predicted) - tp}
    per_edit: dict[str, list[bool]] = defaultdict(list)
    for copy, edit in edit_of.items():
        original = family[copy]
        per_edit[edit if "+" not in edit else "chain (edit of an edit)"].append(
            tuple(sorted((original, copy))) in predicted)
    for edit, found in per_edit.items():
        out[edit] = float(np.mean(found))
    return out


def _families(family: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for name, fam in family.items():
        out[fam].append(name)
    return out


def threshold_pairs(vectors: np.ndarray, names: list[str], t: float) -> set[tuple[str, str]]:
    sims = vectors @ vectors.T
    a, b = np.nonzero(np.triu(sims >= t, 1))
    return {tuple(sorted((names[i], names[j]))) for i, j in zip(a, b, strict=True)}


def quality(args: argparse.Namespace, work: Path) -> None:
    t0 = time.perf_counter()
    images, family, edit_of = build_collection(args.data, args.originals, args.tiles, args.images)
    names = [n for n, _ in images]
    print(f"collection: {len(images)} images ({len(edit_of)} planted copies of "
          f"{args.originals} originals, {4 * args.tiles} tiles); built in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    folder = work / "images"
    folder.mkdir()
    settings = Settings(data_dir=work / "data", image_allowed_roots=str(folder))
    service = build_service(settings)
    ids = {}
    t0 = time.perf_counter()
    if args.copies_first:
        images = _copies_first(images, family)
    for n, (name, img) in enumerate(images):
        data = _jpeg(img)
        path = folder / f"{n:05d}.jpg"
        path.write_bytes(data)
        ids[service.add(data, key=f"k{n}", filepath=str(path)).id] = name
    print(f"added in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    by_name = {v: k for k, v in ids.items()}
    dups = Duplicates(service, processes=args.processes)
    t0 = time.perf_counter()
    report = dups.scan()
    groups = dups.groups()
    scan_s = time.perf_counter() - t0
    bogv_pairs = pairs_of_groups([[ids[m.id] for m in g.members] for g in groups])
    verified = {tuple(sorted((ids[p.a], ids[p.b]))) for p in dups.verdicts.pairs("copy")
                if p.a in ids and p.b in ids}
    chained = pairs_of_groups(list(_components_of(verified)))
    keep_right = [g for g in groups if any(ids[m.id] in family and family[ids[m.id]] == ids[m.id]
                                           for m in g.members)]
    keep_ok = sum(ids[g.suggested] == family.get(ids[g.suggested]) for g in keep_right)

    stored = {i: v for page_ids, page in service.store.vectors() for i, v in
              zip(page_ids, page, strict=True)}
    bogv_vec = np.stack([stored[by_name[n]] for n in names])
    service.close()
    t0 = time.perf_counter()
    imgs = [img for _, img in images]
    phash = np.concatenate([_phash(imgs[i:i + 64]) for i in range(0, len(imgs), 64)])
    from bogv.model.embedder import Embedder
    embedder = Embedder(settings.model_cache)
    plain = np.concatenate([avg(embedder.run(np.stack([embed_tensor(im) for im in imgs[i:i + 32]]),
                                             "fmap").astype(np.float32))
                            for i in range(0, len(imgs), 32)])
    print(f"baselines computed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # pHash vectors are +-1/8: inner product = 1 - 2 * hamming / 64, so hamming <= 10 is >= 0.6875
    excluded = related(names, family)
    results = {"bogv (scan + anchored groups)": score(bogv_pairs, family, edit_of, excluded),
               "bogv pairs, chained (components)": score(chained, family, edit_of, excluded),
               "bogv verified pairs alone": score(verified, family, edit_of, excluded),
               "pHash, Hamming <= 10": score(threshold_pairs(phash, names, 1 - 2 * 10 / 64),
                                             family, edit_of, excluded),
               "plain CNN, cosine >= 0.9": score(threshold_pairs(plain, names, 0.9), family,
                                                 edit_of, excluded),
               "bogv vector, cosine >= 0.9": score(threshold_pairs(bogv_vec, names, 0.9),
                                                   family, edit_of, excluded)}
    for which, label in ((0, "calibration"), (1, "test")):
        results[f"bogv, {label} half"] = score(*split(bogv_pairs, family, edit_of, which),
                                               excluded)
    best = _best_threshold(bogv_vec, names, family, edit_of, excluded)
    results[f"bogv vector, cosine >= {best[1]:.2f} (oracle F1)"] = best[0]
    _print_quality(results, len(images), report.scanned, scan_s, keep_ok, len(keep_right))
    false = [p for p in bogv_pairs - excluded
             if family.get(p[0], p[0]) != family.get(p[1], p[1]) or p[0] not in family]
    print("\nbogv's false pairs by source: " + ", ".join(
        f"{k}: {v}" for k, v in sorted(_by_source(false).items(), key=lambda kv: -kv[1])))
    if args.keep:
        print("false pairs:", *sorted(false), sep="\n  ")
        print("groups keeping another image than their planted original (the edit kept; "
              "why; the others):", *sorted(
                  f"{ids[g.suggested]}: {edit_of.get(ids[g.suggested])}; {g.why}; "
                  + ", ".join(edit_of.get(ids[m.id], "original") for m in g.members[1:])
                  for g in keep_right if ids[g.suggested] != family.get(ids[g.suggested])),
              sep="\n  ")


def _copies_first(images: Named, family: dict[str, str]) -> Named:
    """``images`` with each planted original moved after its last copy."""
    originals = {name: (name, img) for name, img in images if family.get(name) == name}
    moved: Named = []
    for k, (name, img) in enumerate(images):
        if name in originals:
            continue
        moved.append((name, img))
        following = images[k + 1][0] if k + 1 < len(images) else None
        if name in family and family.get(following or "") != family[name]:
            moved.append(originals[family[name]])
    return moved


def _by_source(pairs: list[tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for a, b in pairs:
        sa, sb = (x.split("/")[1] if x.startswith("images/") else x for x in (a, b))
        out[sa if sa == sb else f"{sa}~{sb}"] += 1
    return out


def _components_of(pairs: set[tuple[str, str]]) -> list[list[str]]:
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in list(parent):
        groups[root(x)].append(x)
    return list(groups.values())


def _best_threshold(vectors: np.ndarray, names: list[str], family: dict[str, str],
                    edit_of: dict[str, str], excluded: set[tuple[str, str]]
                    ) -> tuple[dict[str, float], float]:
    def f1(r: dict[str, float]) -> float:
        return 2 * r["precision"] * r["recall"] / max(r["precision"] + r["recall"], 1e-9)

    scored = [(score(threshold_pairs(vectors, names, t), family, edit_of, excluded), float(t))
              for t in np.arange(0.50, 0.995, 0.01)]
    return max(scored, key=lambda s: f1(s[0]))


def _print_quality(results: dict[str, dict[str, float]], n: int, scanned: int, seconds: float,
                   keep_ok: int, groups: int) -> None:
    methods = list(results)
    head = ["precision", "recall", "false pairs"]
    rows = head + sorted({k for r in results.values() for k in r} - set(head),
                         key=lambda k: (k.startswith("chain"),
                                        EDIT_NAMES.index(k) if k in EDIT_NAMES else 99))
    print(f"\n## Pair precision / recall, {n} images ({_load()})\n")
    print("| | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for row in rows:
        cells = [f"{results[m].get(row, float('nan')):.0f}" if row == "false pairs"
                 else f"{results[m].get(row, float('nan')):.3f}" for m in methods]
        label = row if row in ("precision", "recall", "false pairs") else f"recall: {row}"
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\nbogv scan + groups of {scanned} images: {seconds:.1f} s; suggested image to keep "
          f"= the planted original in {keep_ok} of {groups} groups holding one")


# --- scale --------------------------------------------------------------------------------

def scale(args: argparse.Namespace, work: Path) -> None:
    data_dir = args.data_dir or work / "scale"
    data_dir.mkdir(parents=True, exist_ok=True)
    models = data_dir / "models"
    if not models.exists():
        models.symlink_to(Path(tempfile.gettempdir()) / "bogv-dups-models",
                          target_is_directory=True)
    service = build_service(Settings(data_dir=data_dir))
    t0 = time.perf_counter()
    _fill(service, args)
    fill = time.perf_counter() - t0
    n = service.store.count()
    if args.store_only:
        service.close()
        print(f"{n} images stored in {args.data_dir} ({fill:.0f} s for those added)")
        return
    dups = Duplicates(service, processes=args.processes)
    dups.forget()  # a kept collection is scanned and grouped from scratch each run
    lite = _lite_process()
    if lite:
        _reset_peak(lite)  # its start-up (loading the collection) peaks far above the scan

    def progress(done: int, total: int) -> None:
        if done and done % 10_000 < BATCH:
            print(f"  scanned {done}/{total} in {time.perf_counter() - t0:.0f} s ({_load()})",
                  file=sys.stderr)

    def peak_mb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    before = peak_mb()
    t0 = time.perf_counter()
    report = dups.scan(progress)
    t1 = time.perf_counter()
    peaks = {"scan": peak_mb()}
    scanning = resource.getrusage(resource.RUSAGE_CHILDREN)  # its workers, ended by now
    groups = dups.groups()
    t2 = time.perf_counter()
    peaks["groups"] = peak_mb()
    anchoring = resource.getrusage(resource.RUSAGE_CHILDREN)  # and the groups' workers
    dups.groups()
    t3 = time.perf_counter()
    # A decision in the page: "not duplicates" for one pair of the largest group (the
    # dismissals go with the pairs a run starts by forgetting).
    if groups:
        dups.dismiss([groups[0].suggested, groups[0].members[-1].id])
    t4 = time.perf_counter()
    decided = dups.groups()
    t5 = time.perf_counter()
    peaks["a decision"] = peak_mb()
    # What `bogv duplicates` or a restarted `bogv serve` does: groups kept by the last one.
    read_back = Duplicates(service).groups()
    t6 = time.perf_counter()
    peaks["read back"] = peak_mb()
    peak = peak_mb()
    peak_lite = _peak_rss(lite) if lite else 0
    service.close()
    print(f"\n## Scan of {n} stored images ({_load()}; {_cpu()})\n")
    print(f"stored images with record files in {fill:.0f} s (set-up, not the scan)\n")
    print("| stage | seconds | per 1k images |")
    print("|---|---|---|")
    for stage, s in report.stages.items():
        print(f"| {stage} | {s:.1f} | {1000 * s / n:.2f} |")
    print(f"| scan, total | {t1 - t0:.1f} | {1000 * (t1 - t0) / n:.2f} |")
    print(f"| groups (anchored checks included) | {t2 - t1:.1f} | {1000 * (t2 - t1) / n:.2f} |")
    whole = t2 - t0
    print(f"| **scan + groups** | **{whole:.1f}** | {1000 * whole / n:.2f} |")
    print(f"| groups again (a page request) | {t3 - t2:.2f} | |")
    print(f"| groups after one pair of the largest is dismissed (a page decision) "
          f"| {t5 - t4:.2f} | |")
    same = "the same" if read_back == decided else "NOT the same"
    print(f"| groups in a new process, read back from the last one's ({same}) "
          f"| {t6 - t5:.2f} | |")
    print(f"\n{report.copies} copy pairs, {report.checked} pairs checked, {len(groups)} groups "
          f"(sizes: max {max((len(g.members) for g in groups), default=0)}); "
          f"peak RSS: this process {peak} MB (before the scan {before} MB), "
          f"Milvus Lite server {peak_lite / 2**20:.0f} MB")
    print("peak RSS of this process after each stage: " + ", ".join(
        f"{stage} {mb} MB" for stage, mb in peaks.items()))
    if args.processes:
        scan_cpu = scanning.ru_utime + scanning.ru_stime
        print(f"{args.processes} scan worker processes: peak RSS {scanning.ru_maxrss // 1024} "
              f"MB (the largest), CPU {scan_cpu:.1f} s together; the groups' worker "
              f"processes (if any): CPU {anchoring.ru_utime + anchoring.ru_stime - scan_cpu:.1f}"
              f" s together, peak RSS of every worker {anchoring.ru_maxrss // 1024} MB")
    if n < 100_000:
        print(f"extrapolated linearly to 100k: {whole * 100_000 / n / 60:.1f} min "
              "(search cost per image grows with the collection: an estimate)")


def _fill(service: Service, args: argparse.Namespace) -> None:
    """Store images ``count .. --scale`` of the speed bench's set (a kept ``--data-dir``
    only grows). Their vectors come from ``--vectors`` (``speed_corpus.stored_vectors``'s
    cache of exactly these images) when it holds them, checked against the model on a
    sample of each part, else from the model."""
    from speed_corpus import PART, _variants, dev_images

    sources = dev_images(args.data)
    first = service.store.count()
    t0 = time.perf_counter()
    for start in range(first - first % PART, args.scale, PART):
        stop = min(start + PART, args.scale)
        cached = args.vectors / f"{start:07d}.npy" if args.vectors else None
        part = np.load(cached) if cached and cached.exists() else None
        done = start
        for batch in _variants(sources, 70, range(start, stop), 64):
            if done + len(batch) <= first:
                done += len(batch)
                continue
            _store(service, batch, done, None if part is None else part[done - start:])
            done += len(batch)
            if done % 2048 < 64:
                print(f"  stored {done}/{args.scale} in {time.perf_counter() - t0:.0f} s "
                      f"({_load()})", file=sys.stderr)


_checked_parts: set[int] = set()


def _store(service: Service, batch: list[imaging.Image.Image], first: int,
           cached: np.ndarray | None) -> None:
    from speed_corpus import PART

    if cached is None or first // PART not in _checked_parts:
        tensors = np.stack([embed_tensor(img) for img in batch])
        vectors = service.embedder.embed_tensors(tensors)
        if cached is not None:  # the first batch of a cached part: is it these images'?
            gap = float(np.abs(vectors - cached[:len(batch)]).max())
            if gap > 1e-4:
                raise SystemExit(f"--vectors part of image {first} differs by {gap}: "
                                 "not these images' vectors")
            _checked_parts.add(first // PART)
    if cached is not None:
        vectors = cached[:len(batch)]
    digests = [hashlib.sha256(f"scale:{first + i}".encode()).hexdigest() for i in range(len(batch))]
    paths = [f"/stored/{first + i}.jpg" for i in range(len(batch))]
    with ThreadPoolExecutor(2) as pool:
        files = list(pool.map(lambda img: (make_thumbnail(img), *record_points(img)), batch))
    service.add_vectors(vectors, [
        Incoming(d[:32], d, None, path, thumb, points, seen)
        for d, path, (thumb, points, seen) in zip(digests, paths, files, strict=True)])


def _lite_process() -> psutil.Process | None:
    for child in psutil.Process().children(recursive=True):
        if "milvus" in " ".join(child.cmdline()).lower():
            return child
    return None


def _reset_peak(process: psutil.Process) -> None:
    """Start a process's peak RSS (``_peak_rss``) afresh, where Linux allows it: Milvus Lite
    peaks at 800-970 MB loading the 100k collection, before the scan, then holds ~300 MB."""
    with suppress(OSError):
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")


def _peak_rss(process: psutil.Process) -> int:
    """A process's peak RSS in bytes since ``_reset_peak`` (Linux's VmHWM), else its RSS
    now: the Milvus Lite server peaks while the groups read vectors and save pairs, after
    the scan's progress last sampled it (404 MB then, 487 MB sampled apart every 2 s)."""
    try:
        with open(f"/proc/{process.pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status
                        if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return int(process.memory_info().rss)


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f", {os.cpu_count()} cores"
    return "unknown CPU"


def main() -> None:
    cv2.setNumThreads(1)  # as `bogv duplicates` does: the scan's own threads are enough
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get(
        "BOGV_DEVDATA", "/work/devdata")), help="fetch_dev_images.sh output folder")
    parser.add_argument("--originals", type=int, default=80)
    parser.add_argument("--tiles", type=int, default=10)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, help="keep the scale collection here and "
                        "reuse it (it only grows to --scale); each run rescans it from scratch")
    parser.add_argument("--store-only", action="store_true", help="only grow --data-dir "
                        "to --scale images, no scan")
    parser.add_argument("--vectors", type=Path, help="speed_corpus.stored_vectors's cache "
                        "folder of the model: its vectors of these very images are reused")
    parser.add_argument("--images", type=int, default=0, help="use only this many dev images "
                        "(0: all), for a quick run")
    parser.add_argument("--only", choices=("quality", "scale"))
    parser.add_argument("--processes", type=int, default=0, help="scan and group in this many "
                        "worker processes (`bogv duplicates --processes`); 0: two threads")
    parser.add_argument("--keep", action="store_true", help="list bogv's false pairs, and "
                        "the groups keeping another image than their planted original")
    parser.add_argument("--copies-first", action="store_true", help="store each planted "
                        "original after its copies, so that the oldest image is never the one "
                        "to keep: what sizes and edits choose alone")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bogv-dups-"))
    models = Path(tempfile.gettempdir()) / "bogv-dups-models"  # converted once, kept
    models.mkdir(exist_ok=True)
    for data_dir in ("data", "scale"):
        (work / data_dir).mkdir()
        (work / data_dir / "models").symlink_to(models, target_is_directory=True)
    try:
        if args.only in (None, "quality"):
            quality(args, work)
        if args.only in (None, "scale"):
            scale(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

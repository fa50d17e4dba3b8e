"""The weights are read right, the graph is right, the descriptor behaves."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from bogv.model.descriptor import DIM, gem
from bogv.model.embedder import Embedder, weights_path
from bogv.model.preprocess import classify_tensor, embed_tensor
from bogv.model.weights import load_legacy_state_dict

from .images import PHOTOS, photo
from .reference import (
    MEAN_BOUND,
    MIN_BOUND,
    cosines_to_fp32,
    fp32_descriptors,
    photos_and_edited_copies,
)


def top_class(embedder: Embedder, name: str) -> int:
    logits = embedder.run(classify_tensor(photo(name))[None], "logits")
    return int(np.argmax(logits[0]))


@pytest.mark.parametrize(("name", "classes"), [
    ("coffee", {967}),                       # espresso
    ("chelsea", set(range(281, 286))),       # tabby, tiger cat, Persian, Siamese, Egyptian cat
    ("rocket", {657, 744}),                  # missile, projectile
    ("motorcycle_left", {665, 670}),         # moped, motor scooter
])
def test_imagenet_head_recognises_real_photos(embedder: Embedder, name: str,
                                              classes: set[int]) -> None:
    assert top_class(embedder, name) in classes


def test_espresso_is_confident(embedder: Embedder) -> None:
    logits = embedder.run(classify_tensor(photo("coffee"))[None], "logits")[0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert probs[967] > 0.9  # measured 0.957; symmetric padding or wrong BN drops it


def test_state_dict_has_every_tensor() -> None:
    weights = load_legacy_state_dict(weights_path())
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert weights["_fc.weight"].shape == (1000, 1280)


def test_unpickler_refuses_foreign_globals(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Path("/etc/passwd")))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_legacy_state_dict(evil)


# FP32 values recorded for skimage's coffee on x86 (AVX-512): the strongest GeM channels.
# Compared by index and value, not by rank: channels 206 and 317 differ by 5e-4, so an exact
# order is a coin a kernel change can flip (the 8-bit graph without VNNI did).
_GEM = {1213: 0.11721, 933: 0.11089, 206: 0.10744, 317: 0.10698, 1274: 0.10607}

# The FP32 descriptors of the six test photos (lossless PNGs, so no codec is involved),
# recorded on the other CPU kind this project runs on: an AMD EPYC with AVX2 and neither
# AVX-512 nor VNNI (`tests/fp32_vectors.npz` names it). FP32 kernels of two kinds agree to
# float rounding (7e-8 largest difference, emulated Haswell against the VNNI box, README),
# so 1e-5 leaves two orders of magnitude for other float kernels (ARM's NEON), while what
# this guards against moves them by more: the 8-bit graph moves them by 2e-2 to 4e-2 there.
_RECORDED = Path(__file__).with_name("fp32_vectors.npz")


def test_descriptor_is_unit_length_and_matches_the_recorded_fp32_values(
        embedder: Embedder) -> None:
    """Guards against silent changes in preprocessing, pooling, the projection or the graph."""
    tensor = embed_tensor(photo("coffee"))[None]
    pooled = gem(embedder.run(tensor, "fmap"))[0]
    assert (pooled >= 0).all()  # ReLU6 activations
    np.testing.assert_allclose(pooled[list(_GEM)], list(_GEM.values()), atol=1e-4)
    assert pooled.max() == pytest.approx(_GEM[1213], abs=1e-4)
    vec = embedder.embed([photo("coffee")])
    assert vec.shape == (1, DIM) and vec.dtype == np.float32
    assert np.linalg.norm(vec[0]) == pytest.approx(1.0, abs=1e-5)


def test_fp32_vectors_are_those_recorded_on_another_cpu_kind() -> None:
    """One image, one vector on every CPU: what a mixed fleet of replicas relies on."""
    recorded = np.load(_RECORDED)
    assert tuple(recorded["photos"]) == PHOTOS
    got = fp32_descriptors(np.stack([embed_tensor(photo(name)) for name in PHOTOS]))
    np.testing.assert_allclose(got, recorded["vectors"], atol=1e-5, rtol=0,
                               err_msg=f"recorded on {recorded['cpu']}")


def test_running_path_stays_within_the_cosine_bound_of_fp32(embedder: Embedder) -> None:
    """Whatever graph this CPU runs, its stored vectors stay where a mixed fleet needs them."""
    cos, _, _ = cosines_to_fp32(embedder, photos_and_edited_copies())
    assert cos.mean() >= MEAN_BOUND and cos.min() >= MIN_BOUND, (embedder.precision, cos)


def test_batch_equals_single(embedder: Embedder) -> None:
    imgs = [photo("coffee"), photo("chelsea")]
    batch = embedder.embed(imgs)
    singles = np.concatenate([embedder.embed([img]) for img in imgs])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_graph_accepts_any_input_size(embedder: Embedder) -> None:
    fmap = embedder.run(np.zeros((1, 3, 250, 333), np.float32), "fmap")
    assert fmap.shape == (1, 1280, 8, 11)  # SAME padding: ceil(250/32), ceil(333/32)


def test_onnx_graph_is_cached_by_weights_hash(model_cache: Path, embedder: Embedder) -> None:
    cached = list(model_cache.glob(f"efficientnet-lite0-*-{embedder.precision}.onnx"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    again = Embedder(model_cache)
    assert again.model_id == embedder.model_id
    assert cached[0].stat().st_mtime_ns == before


def test_preprocess_geometry_and_range() -> None:
    img = photo("astronaut").resize((640, 360))
    whole = embed_tensor(img)
    crop = classify_tensor(img)
    assert whole.shape == crop.shape == (3, 224, 224)
    assert whole.min() >= -1.0 and whole.max() <= 1.0
    assert not np.allclose(whole, crop)


def test_similar_photos_score_higher_than_unrelated(embedder: Embedder) -> None:
    cat, cat_small, rocket = embedder.embed([photo("chelsea"), photo("chelsea").resize((150, 100)),
                                             photo("rocket")])
    assert float(cat @ cat_small) > 0.9
    assert float(cat @ rocket) < 0.5


class _Counting:
    """The real session, counting how many runs are inside it at once."""

    def __init__(self, session: object, meet: threading.Barrier) -> None:
        self.session, self.meet, self.inside, self.peak = session, meet, 0, 0
        self.lock = threading.Lock()

    def run(self, *args: object) -> object:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            self.meet.wait()  # passes only when two runs are inside at the same time
            return self.session.run(*args)  # type: ignore[attr-defined]
        finally:
            with self.lock:
                self.inside -= 1


def test_concurrent_inferences_run_side_by_side_up_to_the_cores(
        embedder: Embedder, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    counting = _Counting(embedder.session, threading.Barrier(2, timeout=20))
    shared = Embedder(model_cache, session=counting)  # type: ignore[arg-type]
    batch = embed_tensor(photo("coffee"))[None]
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(shared.embed_tensors(batch)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)  # a guard against a hang, not a speed limit: emulated (qemu) CPUs need minutes
    assert counting.peak == 2 and len(results) == 2
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)


def test_projecting_vectors_leaves_other_threads_asleep() -> None:
    """numpy's OpenBLAS answers a matrix product with worker threads that then spin for
    milliseconds: one product per batch burnt a core for the whole import. In a fresh process
    (after the pool's start-up has settled), no thread but the caller's may run while
    vectors are projected: with ``@`` the others ran ~20 clock ticks here, now none."""
    code = textwrap.dedent("""
        import os, threading, time
        import numpy as np
        from bogv.model.descriptor import projection

        def other_threads_ticks():
            ticks = 0
            for tid in os.listdir("/proc/self/task"):
                if int(tid) != threading.get_native_id():
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
            return ticks

        project, x = projection(), np.ones((8, 1280), np.float32)
        project(x)
        time.sleep(0.5)
        before = other_threads_ticks()
        for _ in range(20):
            project(x)
            time.sleep(0.01)
        print(other_threads_ticks() - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert int(out.stdout) == 0


def test_start_up_logs_the_graph_and_the_cpu(model_cache: Path, embedder: Embedder,
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="bogv.model.embedder"):
        again = Embedder(model_cache)
    assert f"model: fp32 graph on {again.cpu}" in caplog.text
    assert again.cpu.features in caplog.text

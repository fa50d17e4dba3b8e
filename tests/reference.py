"""The FP32 network's descriptors: the reference every path bogv runs is held to."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
from PIL import Image

from bogv.model.descriptor import describe
from bogv.model.embedder import Embedder, weights_path
from bogv.model.graph import build_graph
from bogv.model.preprocess import embed_tensor
from bogv.model.weights import load_legacy_state_dict

from .images import PHOTOS, edited_copy, photo

MEAN_BOUND, MIN_BOUND = 0.995, 0.98
"""Cosine to FP32 that every path must keep (mean, worst image): what bogv promises a mixed
fleet (README). The 8-bit graph on a CPU without VNNI fell to 0.988 mean on these images."""


def photos_and_edited_copies() -> np.ndarray:
    """The test photos and an edited copy of each, as one NCHW batch."""
    imgs = [photo(name) for name in PHOTOS]
    imgs += [Image.open(io.BytesIO(edited_copy(img))).convert("RGB") for img in imgs]
    return np.stack([embed_tensor(img) for img in imgs])


def fp32_descriptors(batch: np.ndarray) -> np.ndarray:
    """Descriptors of ``batch`` by the FP32 graph, built afresh (no cache to go stale)."""
    graph = build_graph(load_legacy_state_dict(weights_path())).SerializeToString()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return describe(session.run(["fmap"], {"image": batch})[0])


def cosines_to_fp32(embedder: Embedder, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """``(cosines, reference, got)``: each image's cosine between its FP32 descriptor and
    the one ``embedder`` stores, with both sets of vectors."""
    ref = fp32_descriptors(batch)
    got = embedder.embed_tensors(batch)
    return np.sum(ref * got, axis=1), ref, got

"""How far each graph bogv could run puts the stored descriptor from the FP32 reference,
on this CPU.

    python bench/cpu/cpu_paths.py --data /work/data/dev              # every dev image
    qemu-x86_64 -cpu Haswell $(which python) bench/cpu/cpu_paths.py --every 14
                                                # an AVX2 CPU without AVX-512 or VNNI

Decodes the dev images as bogv does (whole frame at 224x224), embeds them with the FP32
graph and with each 8-bit recipe, and prints the cosine of each image's 8-bit descriptor to
its FP32 one (mean, 1st percentile, min) with the CPU it ran on (``bogv.model.cpu``: under
qemu-user CPUID shows the emulated CPU, which is what onnxruntime's kernels go by).
One inference thread, so the figures do not depend on the machine's load; the CPU ms per
image are a ratio between paths at best, and meaningless under an emulator.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

from bogv.model import cpu, int8
from bogv.model.descriptor import describe
from bogv.model.embedder import weights_path
from bogv.model.graph import build_graph
from bogv.model.preprocess import embed_tensor
from bogv.model.weights import load_legacy_state_dict

RECIPES: dict[str, Callable[[onnx.ModelProto, Path], None]] = {
    "fp32": lambda model, out: onnx.save(model, out),
    "int8 (shipped)": int8.quantize,
    "int8 7-bit weights": lambda model, out: int8.quantize(model, out, reduce_range=True),
}


def tensors(data: Path, every: int) -> np.ndarray:
    with (data / "manifest.csv").open() as f:
        paths = sorted(data / row["path"] for row in csv.DictReader(f))[::every]
    out = []
    for path in paths:
        with Image.open(path) as img:
            out.append(embed_tensor(img.convert("RGB")))
    return np.stack(out)


def descriptors(graph: Path, batch: np.ndarray) -> tuple[np.ndarray, float]:
    """Descriptors of ``batch`` and the CPU ms per image it took, one thread."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    start, out = time.process_time(), []
    for i in range(0, len(batch), 8):
        out.append(describe(session.run(["fmap"], {"image": batch[i:i + 8]})[0]))
    return np.concatenate(out), (time.process_time() - start) / len(batch) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/dev"))
    parser.add_argument("--every", type=int, default=1, help="use every n-th image")
    args = parser.parse_args()
    batch = tensors(args.data, args.every)
    model = build_graph(load_legacy_state_dict(weights_path()))
    print(f"{cpu.detect()}, {len(batch)} images of {args.data}")
    print("| path | cosine mean | 1st percentile | min | CPU ms per image |")
    print("|---|---|---|---|---|")
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in RECIPES.items():
            graph = Path(tmp) / "graph.onnx"
            make(model, graph)
            vectors, ms = descriptors(graph, batch)
            reference = vectors if reference is None else reference
            cos = np.sum(vectors * reference, axis=1)
            print(f"| {name} | {cos.mean():.4f} | {np.percentile(cos, 1):.4f} | "
                  f"{cos.min():.4f} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()

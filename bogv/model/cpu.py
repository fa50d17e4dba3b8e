"""What the CPU can do, read once at start-up, and which graph bogv runs on it.

Why it matters: onnxruntime picks its integer kernels by the CPU's features. On x86 with VNNI
(``avx512_vnni`` or ``avx_vnni``) an 8-bit u8 x s8 product is summed exactly; without it
(AVX2 or AVX-512 only: AMD EPYC/Ryzen before Zen 4, Intel before Cascade Lake) the kernels
pair products in int16 lanes that saturate, and the same image gets another vector (measured
under ``qemu-x86_64 -cpu Haswell``, see the README). The FP32 graph gives the same vector on
every CPU (Haswell emulated against this box: cosine >= 0.9999999), and it is the only path
whose stored descriptors stay within the tolerance the tests hold (mean >= 0.995, min >= 0.98
against FP32): the 8-bit graph reaches 0.991 / 0.955 even with VNNI. So FP32 runs by default
everywhere, and the 8-bit graph is an opt-in (``PRECISION=int8``) that starts only where its
integer products are exact and measured: x86 with VNNI.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass
from pathlib import Path

from bogv.errors import BogvError

__all__ = ["PRECISIONS", "Cpu", "choose_precision", "cpuid_flags", "detect", "parse_cpuinfo"]

PRECISIONS = ("fp32", "int8")
"""The graphs bogv can run: the reference network, or its 8-bit quantization."""

_SHOWN = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp", "i8mm")
"""The features that decide which kernels onnxruntime runs (x86: AVX2, AVX-512, VNNI; ARM:
the dot-product and matrix-multiply extensions)."""


@dataclass(frozen=True)
class Cpu:
    """The processor as bogv sees it: model name, architecture and the features that matter."""

    model: str
    arch: str
    flags: frozenset[str]

    @property
    def vnni(self) -> bool:
        """x86 instructions that sum u8 x s8 products in 32 bits, without saturation."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni"})

    @property
    def features(self) -> str:
        """The relevant features present, e.g. ``avx2 avx512f avx512_vnni`` (``-`` if none)."""
        return " ".join(f for f in _SHOWN if f in self.flags) or "-"

    def __str__(self) -> str:
        return f"{self.model} ({self.arch}: {self.features})"


def parse_cpuinfo(text: str, arch: str) -> Cpu:
    """A ``Cpu`` from the text of Linux's ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``)."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in ("model name", "hardware") and not model:
            model = value.strip()
        elif name in ("flags", "features") and not flags:
            flags = set(value.split())
    return Cpu(model or platform.processor() or "unknown", arch, frozenset(flags))


_CPUID = {"AVX2": "avx2", "AVX512F": "avx512f", "AVX512VNNI": "avx512_vnni",
          "ASIMDDP": "asimddp"}
"""numpy's names for the features it reads from the CPU itself, and Linux's names for them."""


def cpuid_flags() -> dict[str, bool]:
    """The features numpy's runtime dispatch detected, by Linux's names: what the CPU
    itself answers (CPUID on x86), which is also what onnxruntime's kernels go by.

    Why not only ``/proc/cpuinfo``: an emulator (``qemu-x86_64 -cpu Haswell``) or a
    hypervisor can hide features from CPUID while the file still shows the host's."""
    found: dict[str, bool] = {}
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            found = importlib.import_module(module).__cpu_features__
            break
        except (ImportError, AttributeError):
            continue
    return {ours: bool(found[theirs]) for theirs, ours in _CPUID.items() if theirs in found}


def detect(cpuinfo: Path = Path("/proc/cpuinfo")) -> Cpu:
    """This machine's CPU: model and flags from ``/proc/cpuinfo``, corrected by CPUID where
    numpy knows the feature. Where the file is missing (macOS, Windows) only CPUID's features
    are known; with neither, none are, which keeps the 8-bit opt-in off: the safe side."""
    arch = platform.machine().lower() or "unknown"
    try:
        found = parse_cpuinfo(cpuinfo.read_text(errors="replace"), arch)
    except OSError:
        found = Cpu(platform.processor() or "unknown", arch, frozenset())
    cpuid = cpuid_flags()
    flags = {f for f in found.flags if cpuid.get(f, True)} | {f for f, on in cpuid.items() if on}
    return Cpu(found.model, arch, frozenset(flags))


def choose_precision(requested: str, cpu: Cpu) -> str:
    """The graph to run: ``requested`` if this CPU computes it the way it was measured.

    ``int8`` elsewhere is refused rather than replaced by FP32: its vectors would not match
    what the collection holds (another model id), and silently slower or silently different
    is worse than a clear start-up error on a mixed fleet.
    """
    if requested not in PRECISIONS:
        raise BogvError(f"PRECISION must be one of {', '.join(PRECISIONS)}, not {requested!r}",
                        field="PRECISION")
    if requested == "int8" and not cpu.vnni:
        raise BogvError(
            f"PRECISION=int8 needs an x86 CPU with VNNI (avx512_vnni or avx_vnni); this one is "
            f"{cpu}, where 8-bit products saturate and vectors drift from the stored ones. "
            "Use PRECISION=fp32 (the default) and `bogv reembed`.", field="PRECISION")
    return requested

"""Reading the CPU's features and choosing the graph bogv runs on it."""

from __future__ import annotations

import pytest

from bogv.errors import BogvError
from bogv.model import cpu

_EPYC_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 ssse3 fma avx2 avx512f avx512bw avx512_vnni
"""
_EPYC_ZEN2 = """processor\t: 0
model name\t: AMD EPYC 7R32
flags\t\t: fpu sse2 ssse3 fma avx2
"""
_GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp i8mm
CPU implementer\t: 0x41
"""


def test_cpuinfo_is_read_on_x86_and_arm() -> None:
    zen4 = cpu.parse_cpuinfo(_EPYC_ZEN4, "x86_64")
    assert zen4.model == "AMD EPYC 9R14" and zen4.vnni
    assert zen4.features == "avx2 avx512f avx512_vnni"
    assert str(zen4) == "AMD EPYC 9R14 (x86_64: avx2 avx512f avx512_vnni)"
    zen2 = cpu.parse_cpuinfo(_EPYC_ZEN2, "x86_64")
    assert not zen2.vnni and zen2.features == "avx2"
    arm = cpu.parse_cpuinfo(_GRAVITON, "aarch64")
    assert arm.features == "asimddp i8mm" and not arm.vnni


def test_fp32_runs_everywhere_and_int8_only_where_its_products_are_exact() -> None:
    kinds = {name: cpu.parse_cpuinfo(text, arch) for name, text, arch in [
        ("zen4", _EPYC_ZEN4, "x86_64"), ("zen2", _EPYC_ZEN2, "x86_64"),
        ("graviton", _GRAVITON, "aarch64"), ("unknown", "", "arm64")]}
    for kind in kinds.values():
        assert cpu.choose_precision("fp32", kind) == "fp32"
    assert cpu.choose_precision("int8", kinds["zen4"]) == "int8"
    for name in ("zen2", "graviton", "unknown"):
        with pytest.raises(BogvError, match="PRECISION=int8 needs an x86 CPU with VNNI") as info:
            cpu.choose_precision("int8", kinds[name])
        assert info.value.field == "PRECISION"
    with pytest.raises(BogvError, match="PRECISION must be one of fp32, int8"):
        cpu.choose_precision("int4", kinds["zen4"])


def test_detected_features_are_the_ones_the_cpu_answers() -> None:
    """CPUID (through numpy) wins over ``/proc/cpuinfo``: under ``qemu-x86_64 -cpu Haswell``
    the file still lists the host's avx512_vnni while the emulated CPU has none."""
    here = cpu.detect()
    for flag, present in cpu.cpuid_flags().items():
        assert (flag in here.flags) == present
    assert here.model and here.arch

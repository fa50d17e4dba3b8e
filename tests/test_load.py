"""The load test of ``bench/speed/load.py`` (slow): 8 clients adding, searching and deleting on a
real ``bogv serve`` for three minutes, with no error, no 5xx and no deleted record found."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench" / "speed" / "load.py"


@pytest.mark.slow
def test_concurrent_add_search_delete() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--clients", "8", "--duration", "180",
                             "--json"], capture_output=True, text=True, timeout=900)
    report = json.loads(result.stdout)
    print(json.dumps(report, indent=1))
    assert report["errors"] == 0, report["first_errors"]
    assert report["server_errors"] == 0
    assert report["stale_deletes"] == 0 and report["missing_adds"] == 0
    assert report["deleted"] > 100 and report["operations"]["all"]["count"] > 1000
    assert result.returncode == 0

"""The web app's own checks, run from pytest so CI runs them: Vitest unit tests, and the shipped
bundle (kitch/webapp) being exactly what web/ source builds to (scripts/check-web)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.browser.harness import ROOT, WEB


def test_vitest_unit_tests_pass(node_modules: Path) -> None:
    proc = subprocess.run(
        ["npx", "vitest", "run", "--reporter=dot"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


def test_shipped_bundle_matches_source(node_modules: Path) -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "check-web")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

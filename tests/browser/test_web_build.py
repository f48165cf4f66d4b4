"""The web app's own checks, run from pytest so CI runs them: Vitest unit tests, and
scripts/check-web (the API types generated from the OpenAPI document are current, ESLint is
clean, and the shipped bundle kitch/webapp is exactly what web/ source builds to)."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_types_lint_and_shipped_bundle_match_source(node_modules: Path) -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "check-web")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""Fixtures for the browser tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.harness import CHROMIUM, WEB


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """web/node_modules, installed from the lockfile when missing or installed from another
    lockfile (CI starts from a clean tree); the same stamp as scripts/build-web."""
    assert shutil.which("node"), "node is not installed (Node 20+ is needed for browser tests)"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)"
    modules = WEB / "node_modules"
    stamp = modules / ".kitch-lockfile.sha256"
    want = hashlib.sha256((WEB / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=WEB,
            env=env,
            check=True,
            timeout=300,
        )
        stamp.write_text(want + "\n")
    return modules

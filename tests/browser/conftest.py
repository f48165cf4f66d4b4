"""Fixtures for the browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.harness import CHROMIUM, WEB


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """web/node_modules, installed from the lockfile when missing (CI starts from a clean tree)."""
    assert shutil.which("node"), "node is not installed (Node 20+ is needed for browser tests)"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)"
    modules = WEB / "node_modules"
    if not (modules / "playwright-core").is_dir():
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=WEB,
            env=env,
            check=True,
            timeout=300,
        )
    return modules

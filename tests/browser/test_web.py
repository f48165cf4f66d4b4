"""Browser tests: the built web app in the apt Chromium, driven by playwright-core (web/e2e/*.mjs).

Nothing here skips: a missing piece (Node, the Kitch server) is a failure that says what is
missing. Screenshots go to test-artifacts/ (KITCH_TEST_ARTIFACTS overrides).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import ARTIFACTS, free_port, run_script, server, uvicorn

pytestmark = pytest.mark.browser


def test_pages_render_without_a_stream(node_modules: Path) -> None:
    """Static serving and the SPA fallback in a real browser; sign-in redirect; phone width."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(uvicorn("web_only", port), base + "/"):
        result = run_script("smoke.mjs", base)
    checks = result["checks"]
    assert checks["browse"] and checks["login"] and checks["register"]
    assert checks["firstTab"] == "Skip to content"
    assert checks["dashboardRedirect"] == "/login?next=%2Fdashboard"
    assert checks["phoneOverflow"] is False
    assert not [e for e in result["errors"] if e.startswith("pageerror")]
    for name in ("browse", "login", "register", "register-phone"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000


def test_account_flow_against_the_api(node_modules: Path, tmp_path: Path) -> None:
    """Sign up, dashboard key (hidden, shown, rotated), stream info, settings (email change with
    the password), silent refresh of a 12 s access token, the refresh token as an HttpOnly cookie
    that page scripts cannot read, reloads that stay signed in, sign out in one tab signing out
    another, sign in, password change and deletion, on the real API."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "KITCH_DATA_DIR": str(tmp_path / "data"),
        "KITCH_BCRYPT_COST": "4",
        "KITCH_ACCESS_TOKEN_TTL": "12",
    }
    with server(uvicorn("api_and_web", port), base + "/", env):
        result = run_script(
            "account.mjs",
            base,
            USERNAME="acct_e2e",
            PASSWORD="correct horse battery",
            TOKEN_TTL_S="12",
        )
    c = result["checks"]
    assert c["offline"] == "false"
    assert c["keyHiddenAtFirst"] and c["keyRotated"] and c["keyHiddenAgain"]
    assert c["serverUrl"].startswith("rtmp://127.0.0.1:") and c["serverUrl"].endswith("/live")
    assert c["channelTitle"] == "E2E title"
    assert "one" in c["channelTags"] and "two" in c["channelTags"]
    assert c["headerName"] == "E2E Person"
    assert c["phoneOverflow"] == {
        "dashboard-phone": False,
        "settings-phone": False,
        "channel-offline-phone": False,
    }, c["phoneOverflow"]
    assert c["avatarStatus"] == 200
    assert c["emailChanged"]
    # the refresh token: an HttpOnly cookie for the auth path; the page keeps nothing in storage
    nothing = {"cookie": "", "localStorage": 0, "sessionStorage": 0}
    assert c["scriptsSee"] == nothing and c["scriptsSeeAfterReload"] == nothing
    assert c["refreshCookie"] == {
        "httpOnly": True,
        "sameSite": "Strict",
        "path": "/api/v1/auth",
        "persistent": True,
    }
    assert c["silentRefresh"] and c["stillSignedIn"] == "E2E Person" and c["keyAfterRefresh"]
    assert c["reloadRefresh"] == 200 and c["afterReload"] == "E2E Person"
    assert c["otherTab"] == "E2E Person" and c["otherTabSignedOut"]
    assert c["cookieAfterSignOut"] is None and c["signedOutAfterReload"]
    assert c["wrongPassword"]
    assert c["signedInAgain"] == "E2E Person"
    assert c["signedInAfterPasswordChange"] == "E2E Person"
    assert c["deletedChannelStatus"] == 404
    assert not [e for e in result["errors"] if e.startswith("pageerror")]
    for name in ("dashboard", "settings", "channel-offline", "dashboard-phone", "settings-phone"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000

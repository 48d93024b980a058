"""A real browser for the web inbox's tests: Debian's Chromium driven by Playwright.

Playwright's own browser downloads cannot be fetched here, so the system Chromium is used
(`make test` installs it with apt-get where it can). Without it the tests skip with one line,
or fail when GATEWAY_REQUIRE_BROWSER=1 (CI, `.ci/run`): a skipped browser suite must not pass
for a tested one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage"]


def chromium_path() -> str:
    """The Chromium to drive; skips (or fails, GATEWAY_REQUIRE_BROWSER=1) without one."""
    found = next((c for c in CANDIDATES if os.access(c, os.X_OK)), None) \
        or shutil.which("chromium")
    problem = None
    if found is None:
        problem = "Chromium not installed (apt-get install -y chromium; `make test` does it)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            problem = "Chromium not installed for the tests: the playwright package is missing " \
                      "(pip install -e '.[test]')"
    if problem is not None:
        if os.environ.get("GATEWAY_REQUIRE_BROWSER") == "1":
            pytest.fail(problem + "; GATEWAY_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(problem)
    assert found is not None
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A launched browser (Playwright's async API, on the test's event loop)."""
    path = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()

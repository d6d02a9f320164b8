"""Helpers of the browser tests: a tab with what it requested, screenshots, signing in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures then skip (or fail under CI) with the reason
    expect = None
else:
    # Rankings on a busy 2-core machine can take seconds: wait up to 20 s for what the page
    # should show (Playwright's default is 5 s).
    expect.set_options(timeout=20_000)

SCREENSHOTS = Path(os.environ.get("IEI_MATCH_SCREENSHOTS",
                                  Path(__file__).parent / "screenshots"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROLE_VIEW = {"enterprise": "enterprise", "college": "college", "coordinator": "coordinator",
             "admin": "coordinator"}
saved: list[Path] = []


@dataclass
class Tab:
    """A page in a fresh browser context, with every request URL and console error seen."""

    page: object
    urls: list[str]
    console_errors: list[str]
    auth_headers: list[str]

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        saved.append(path)
        return path


def sign_in(tab: Tab, url: str, key: str, role: str) -> None:
    """Open the page at ``url``, sign in with ``key`` and wait for ``role``'s view."""
    page = tab.page
    page.goto(url + "/")
    page.locator("#key").fill(key)
    page.locator("#signin-form button[type=submit]").click()
    page.locator(f"#view-{ROLE_VIEW[role]}").wait_for(state="visible")



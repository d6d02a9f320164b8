"""Debian's Chromium for the browser tests: found, or installed with apt-get once."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# A Chinese font, so that screenshots show characters rather than boxes. Best effort: the
# tests read the page's text, not its pixels, and a failed attempt is not repeated.
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT_TRIED = Path("/tmp/iei-match-cjk-font-tried")
LOCK = Path("/tmp/iei-match-chromium-install.lock")
INSTALL_TIMEOUT_S = 900


def _apt(*args: str, timeout: float = INSTALL_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def _install(package: str, timeout: float) -> subprocess.CompletedProcess:
    """apt-get install ``package``; on failure refresh the package lists and try again."""
    install = ("install", "-y", "--no-install-recommends", package)
    done = _apt(*install, timeout=timeout)
    if done.returncode != 0:  # the package lists may be missing or stale
        _apt("update", timeout=timeout)
        done = _apt(*install, timeout=timeout)
    return done


def _can_install() -> str:
    if shutil.which("apt-get") is None:
        return "there is no apt-get to install it"
    if os.geteuid() != 0:
        return "installing it needs root (apt-get install chromium)"
    return ""


def _locked_until(lock, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(2)


def ensure_chromium() -> tuple[Path | None, str]:
    """(path, "") when Chromium is there or could be installed; (None, why) otherwise.

    One process installs at a time (a file lock); the others wait for it and then find the
    browser in place. A Chinese font is added once when missing, if apt-get can.
    """
    want_font = not CJK_FONT.exists() and not FONT_TRIED.exists()
    if CHROMIUM.exists() and not want_font:
        return CHROMIUM, ""
    why = _can_install()
    if why:
        return (CHROMIUM, "") if CHROMIUM.exists() else (None, f"{CHROMIUM} is missing; {why}")
    with open(LOCK, "w") as lock:
        if not _locked_until(lock, time.monotonic() + INSTALL_TIMEOUT_S):
            return None, "timed out waiting for another Chromium install"
        try:
            if not CHROMIUM.exists():
                try:
                    done = _install("chromium", INSTALL_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    return None, f"apt-get took longer than {INSTALL_TIMEOUT_S} s"
                if not CHROMIUM.exists():
                    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                    return None, "apt-get install chromium failed: " + " | ".join(tail)
            if not CJK_FONT.exists() and not FONT_TRIED.exists():
                FONT_TRIED.touch()
                try:
                    _install("fonts-wqy-microhei", 300)
                except subprocess.TimeoutExpired:
                    pass
            return CHROMIUM, ""
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

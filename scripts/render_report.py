#!/usr/bin/env python3
"""Render an nmt-report HTML page to a PNG screenshot with headless Chromium, offline.

    python scripts/render_report.py OUT/report.html report.png [--width 1400] [--height 3000]

Chromium runs with a throw-away profile and every background network feature off, so a
self-contained report renders the same on a machine without network access.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    sys.exit(f"error: no Chromium found (tried {', '.join(BROWSERS)}); apt-get install chromium")


def render(*, page: Path, png: Path, width: int = 1400, height: int = 3000) -> Path:
    """Screenshot `page` (an HTML file) at width x height CSS pixels into `png`.

    Args:
        page: the HTML file to render.
        png: the PNG to write (its directory is created).
        width: window width in pixels.
        height: window height in pixels; a longer page is cut off at it.

    Returns:
        The PNG path.
    """
    if not page.is_file():
        sys.exit(f"error: {page}: no such file")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            find_browser(),
            *OFFLINE_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if not png.is_file():
        sys.exit(
            f"error: chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    return png


def dump_dom(page: Path) -> str:
    """The page's DOM as Chromium has parsed it (`--dump-dom`)."""
    if not page.is_file():
        sys.exit(f"error: {page}: no such file")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            find_browser(),
            *OFFLINE_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or "<body" not in proc.stdout:
        sys.exit(f"error: chromium dumped no DOM (exit {proc.returncode}): {proc.stderr[-500:]}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="report.html")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    print(render(page=args.page, png=args.png, width=args.width, height=args.height))


if __name__ == "__main__":
    main()

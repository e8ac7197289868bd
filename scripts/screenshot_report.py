#!/usr/bin/env python3
"""Render a report.html in headless Chromium and save a PNG screenshot of it.

    python scripts/screenshot_report.py runs/ckpt/report.html shot.png [--height 4000]

Uses /usr/bin/chromium, else chromium, chromium-browser or google-chrome from PATH
(Debian: `apt-get install -y chromium`). The browser gets a throwaway profile and no network
features, so the screenshot shows exactly what the self-contained file renders. Exits 1 with one
line on stderr when no browser is found or the PNG is missing, tiny, or a single color.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MIN_BYTES = 10_000


def find_browser() -> str | None:
    """The first Chromium-family browser installed, or None."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def screenshot(
    browser: str, html: Path, png: Path, width: int, height: int, timeout: float
) -> None:
    """Run the headless browser once; raises CalledProcessError / TimeoutExpired on failure."""
    with tempfile.TemporaryDirectory(prefix="faithcheck-chromium-") as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )


def problem_with(png: Path) -> str | None:
    """Why the PNG is not a plausible page render, or None when it looks fine."""
    if not png.is_file():
        return f"{png} was not written"
    size = png.stat().st_size
    if size < MIN_BYTES:
        return f"{png} is only {size} bytes"
    try:
        from PIL import Image
    except ImportError:
        return None  # size alone then: a blank 1280x4000 PNG compresses far below MIN_BYTES
    with Image.open(png) as image:
        colors = image.convert("RGB").getcolors(maxcolors=4)
    if colors is not None and len(colors) < 2:
        return f"{png} is a single color"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report.html to render")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the browser")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"screenshot_report: {args.html}: no such file", file=sys.stderr)
        return 1
    browser = find_browser()
    if browser is None:
        print(
            "screenshot_report: no chromium found (tried /usr/bin/chromium and "
            f"{', '.join(CANDIDATES)} on PATH); install it: apt-get install -y chromium",
            file=sys.stderr,
        )
        return 1
    args.png.parent.mkdir(parents=True, exist_ok=True)
    args.png.unlink(missing_ok=True)  # a stale PNG must not pass for a new one
    try:
        screenshot(browser, args.html, args.png.resolve(), args.width, args.height, args.timeout)
    except subprocess.CalledProcessError as exc:
        tail = " ".join(exc.stderr.decode(errors="replace").split())[-300:]
        print(f"screenshot_report: {browser} failed ({exc.returncode}): {tail}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired:
        print(f"screenshot_report: {browser} timed out after {args.timeout:g}s", file=sys.stderr)
        return 1
    problem = problem_with(args.png)
    if problem:
        print(f"screenshot_report: {problem}", file=sys.stderr)
        return 1
    print(f"wrote {args.png} ({args.png.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

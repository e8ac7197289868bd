#!/usr/bin/env python3
"""Open a report.html in headless Chromium: screenshot it, and with --check test its explorer.

    python scripts/screenshot_report.py runs/ckpt/report.html shot.png [--height 4000]
    python scripts/screenshot_report.py report.html shot.png --phone phone.png --check

Uses /usr/bin/chromium, else chromium, chromium-browser or google-chrome from PATH
(Debian: `apt-get install -y chromium`), driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: no port, no websocket, no Python dependency). The browser gets a
throwaway profile and no network features, so what it shows is exactly what the self-contained
file renders. The page is loaded at a phone width (390 px, mobile) and a desktop width (1280 px)
and, with --check, at each:

- every filter of the explorer shows exactly the rows whose data attributes match it, and some
  filter narrows the rows;
- every "responses behind …" link of a verdict check sets the explorer's filters to the link's,
  shows the matching rows and scrolls them into view;
- the page lays out at that width with no horizontal overflow;
- nothing is logged to the console as an error and no script throws.

--check prints what it found as JSON on stdout and one line per failure on stderr. Exit 1 on a
failed check, no browser, or a PNG that is missing, tiny or a single color.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
MIN_BYTES = 10_000
PHONE = (390, 844)
DESKTOP = (1280, 800)


def find_browser() -> str | None:
    """The first Chromium-family browser installed, or None."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class Browser:
    """Headless Chromium spoken to over the DevTools protocol on fds 3 (in) and 4 (out):
    JSON messages ended by a NUL byte. One page, attached in flat session mode."""

    def __init__(self, binary: str, profile: str, timeout: float) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buffer = b""
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def plumb() -> None:  # in the child: the protocol's fixed descriptors, inheritable
            # Copies above 10 first: a pipe end may itself be 3 or 4, and dup2 onto itself
            # would leave it close-on-exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child, from_child)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        # close_fds would close 3 and 4 after plumb(); Python's own descriptors are not
        # inheritable (PEP 446), so without it the child still gets only these and stdio.

        self.proc = subprocess.Popen(
            [
                binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=plumb, close_fds=False,
        )  # fmt: skip
        os.close(to_child)
        os.close(from_child)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its result (events met on the way are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.send(method, self.session, **params)

    def wait_for(self, method: str) -> None:
        """Wait for the page's next event `method`."""
        while True:
            event = self._receive()
            if event.get("method") == method and event.get("sessionId") == self.session:
                return

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError(f"no answer from the browser in {self.timeout:g}s")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser exited: " + self._stderr_tail())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message

    def _stderr_tail(self) -> str:
        self.proc.kill()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        return " ".join(err.split())[-300:]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):  # gone already
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._read, self._write):
            os.close(fd)


def console_errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries among the page's events."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", "")) for a in p.get("args", [])))
        elif e["method"] == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            out.append(f"exception: {text}")
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text')}")
    return out


def load(browser: Browser, url: str, width: int, height: int, mobile: bool) -> None:
    """Lay the page out at `width` × `height` CSS pixels and load `url`."""
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width, height=height, deviceScaleFactor=1, mobile=mobile,
    )  # fmt: skip
    browser.call("Page.navigate", url=url)
    browser.wait_for("Page.loadEventFired")


def matches(row: dict[str, str], wanted: dict[str, str]) -> bool:
    """The explorer's filter rule: a value matches itself; `not-x` anything but x and none."""
    for key, want in wanted.items():
        have = row.get(key)
        if not want:
            continue
        if want.startswith("not-"):
            if have in (want[4:], "none"):
                return False
        elif have != want:
            return False
    return True


_EXPLORERS = """[...document.querySelectorAll('.explorer')].map(b => ({id: b.id,
 rows: [...b.querySelectorAll('details.resp')].map(d => Object.assign({}, d.dataset)),
 selects: [...b.querySelectorAll('select')].map(s => ({name: s.name,
   values: [...s.options].map(o => o.value).filter(v => v)}))}))"""

_SHOWN = """(id => [...document.getElementById(id).querySelectorAll('details.resp')]
 .map((d, i) => getComputedStyle(d).display === 'none' ? -1 : i).filter(i => i >= 0))"""

_SET = """(async (id, values) => {const b = document.getElementById(id);
 b.querySelectorAll('select').forEach(s => {s.value = values[s.name] || '';
 s.dispatchEvent(new Event('change'));});
 await new Promise(r => requestAnimationFrame(() => r()));})"""

_FOLLOW = """(async href => {
 const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
 location.hash = ''; await frame(); window.scrollTo(0, 0); await frame();
 const a = [...document.querySelectorAll('a')].find(x => x.getAttribute('href') === href);
 a.click(); await frame(); await frame();
 const id = decodeURIComponent(href.slice(1)).split('?')[0];
 const box = document.getElementById(id);
 const shown = [...box.querySelectorAll('details.resp')]
   .filter(d => getComputedStyle(d).display !== 'none');
 const top = box.getBoundingClientRect().top;
 const end = document.documentElement.scrollHeight - 1;
 const selects = [...box.querySelectorAll('select')].map(s => [s.name, s.value]);
 return {id: id, top: top, innerHeight: innerHeight, atBottom: innerHeight + scrollY >= end,
   firstRowTop: shown.length ? shown[0].getBoundingClientRect().top : null,
   selects: Object.fromEntries(selects)};})"""

_LAYOUT = """({innerWidth: innerWidth, scrollWidth: document.documentElement.scrollWidth,
 height: document.documentElement.scrollHeight})"""


def check_filters(browser: Browser) -> tuple[dict[str, Any], list[str]]:
    """Each filter option of each explorer against the rows its data attributes select."""
    found: dict[str, Any] = {"explorers": 0, "rows": 0, "options": 0, "narrowing": 0}
    failures = []
    for box in browser.evaluate(_EXPLORERS):
        found["explorers"] += 1
        found["rows"] += len(box["rows"])
        for sel in box["selects"]:
            for value in sel["values"]:
                wanted = {sel["name"]: value}
                browser.evaluate(f"{_SET}({json.dumps(box['id'])}, {json.dumps(wanted)})")
                shown = browser.evaluate(f"{_SHOWN}({json.dumps(box['id'])})")
                expected = [i for i, row in enumerate(box["rows"]) if matches(row, wanted)]
                found["options"] += 1
                found["narrowing"] += len(expected) < len(box["rows"])
                if shown != expected:
                    failures.append(
                        f"filter {sel['name']}={value} in #{box['id']} shows rows {shown}, "
                        f"expected {expected}"
                    )
        browser.evaluate(f"{_SET}({json.dumps(box['id'])}, {{}})")
    if found["rows"] > 1 and not found["narrowing"]:
        failures.append("no explorer filter narrows the rows")
    if not found["explorers"]:
        failures.append("the page has no explorer")
    return found, failures


def check_links(browser: Browser) -> tuple[list[dict[str, Any]], list[str]]:
    """Each verdict check's link into the explorer: filters set, rows shown, in view."""
    hrefs = browser.evaluate(
        "[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))"
        ".filter(h => h && h.startsWith('#explore-'))"
    )
    boxes = {b["id"]: b["rows"] for b in browser.evaluate(_EXPLORERS)}
    results, failures = [], []
    for href in dict.fromkeys(hrefs):
        got = browser.evaluate(f"{_FOLLOW}({json.dumps(href)})")
        query = href.split("?", 1)[1] if "?" in href else ""
        wanted = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        rows = boxes.get(got["id"], [])
        expected = sum(matches(r, wanted) for r in rows)
        shown = browser.evaluate(f"{_SHOWN}({json.dumps(got['id'])})")
        in_view = abs(got["top"]) <= 1 or (got["atBottom"] and 0 <= got["top"] < got["innerHeight"])
        row_in_view = got["firstRowTop"] is None or got["firstRowTop"] < got["innerHeight"]
        results.append({"href": href, "rows": len(shown), "in_view": in_view and row_in_view})
        if any(got["selects"].get(k) != v for k, v in wanted.items()):
            failures.append(f"link {href} set the filters to {got['selects']}")
        if len(shown) != expected:
            failures.append(f"link {href} shows {len(shown)} rows, expected {expected}")
        if not (in_view and row_in_view):
            failures.append(f"link {href} left its responses out of view (top {got['top']:.0f})")
    return results, failures


def check_page(browser: Browser, url: str, width: int, height: int, mobile: bool) -> dict[str, Any]:
    """Every check at one width; 'failures' lists what failed."""
    browser.events.clear()
    load(browser, url, width, height, mobile)
    layout = browser.evaluate(_LAYOUT)
    failures = []
    if layout["innerWidth"] != width:
        failures.append(f"laid out {layout['innerWidth']} px wide, not {width}")
    if layout["scrollWidth"] > layout["innerWidth"]:
        failures.append(f"{layout['scrollWidth'] - layout['innerWidth']} px horizontal overflow")
    filters, failed = check_filters(browser)
    failures += failed
    links, failed = check_links(browser)
    failures += failed
    errors = console_errors(browser.events)
    failures += errors
    return {
        "width": width, "layout": layout, "filters": filters, "links": links,
        "console_errors": errors, "failures": [f"{width} px: {f}" for f in failures],
    }  # fmt: skip


def capture(browser: Browser, url: str, png: Path, width: int, height: int, mobile: bool) -> None:
    """A fresh load at `width` × `height`, saved as PNG."""
    load(browser, url, width, height, mobile)
    data = browser.call("Page.captureScreenshot", format="png")["data"]
    png.write_bytes(base64.b64decode(data))


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


def run(args: argparse.Namespace, binary: str) -> tuple[dict[str, Any], list[str]]:
    """Checks (when asked) and screenshots in one browser; what was found and what failed."""
    url = args.html.resolve().as_uri()
    shots = [(args.png, args.width, args.height, False)]
    if args.phone:
        shots.append((args.phone, PHONE[0], args.phone_height, True))
    found: dict[str, Any] = {"html": str(args.html), "checks": []}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="faithcheck-chromium-") as profile:
        browser = Browser(binary, profile, args.timeout)
        try:
            found["browser"] = browser.send("Browser.getVersion").get("product")
            if args.check:
                for (width, height), mobile in ((PHONE, True), (DESKTOP, False)):
                    result = check_page(browser, url, width, height, mobile)
                    found["checks"].append(result)
                    failures += result["failures"]
            for png, width, height, mobile in shots:
                png.parent.mkdir(parents=True, exist_ok=True)
                png.unlink(missing_ok=True)  # a stale PNG must not pass for a new one
                capture(browser, url, png, width, height, mobile)
                if (problem := problem_with(png)) is not None:
                    failures.append(problem)
        finally:
            browser.close()
    return found, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report.html to open")
    parser.add_argument("png", type=Path, help="where to write the desktop-width screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--phone", type=Path, help="also a phone-width (390 px) screenshot")
    parser.add_argument("--phone-height", type=int, default=1600)
    parser.add_argument("--check", action="store_true", help="test the explorer; JSON to stdout")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per browser answer")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"screenshot_report: {args.html}: no such file", file=sys.stderr)
        return 1
    binary = find_browser()
    if binary is None:
        print(
            "screenshot_report: no chromium found (tried /usr/bin/chromium and "
            f"{', '.join(CANDIDATES)} on PATH); install it: apt-get install -y chromium",
            file=sys.stderr,
        )
        return 1
    started = time.monotonic()
    try:
        found, failures = run(args, binary)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"screenshot_report: {binary}: {exc}", file=sys.stderr)
        return 1
    found["seconds"] = round(time.monotonic() - started, 2)
    if args.check:
        print(json.dumps(found, indent=1))
    for failure in failures:
        print(f"screenshot_report: {failure}", file=sys.stderr)
    if not failures:
        print(f"wrote {args.png} ({args.png.stat().st_size} bytes)", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

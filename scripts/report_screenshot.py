"""Full-page screenshot of a run's report.html in headless Chromium (Debian's /usr/bin/chromium).

    python scripts/report_screenshot.py runs/eapo-seed0/report.html docs/report-screenshot.png

Prints the console messages, page errors and requests the page made (expected: none but the file itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main(report: str, out: str, width: int = 1280) -> int:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        messages: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.on("request", lambda r: requests.append(r.url[:80]))
        page.goto(Path(report).resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=out, full_page=True)
        browser.close()
    print(f"console/page errors: {messages or 'none'}; requests: {requests}")
    print(f"screenshot: {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python scripts/report_screenshot.py RUN_DIR/report.html OUT.png")
    sys.exit(main(sys.argv[1], sys.argv[2]))

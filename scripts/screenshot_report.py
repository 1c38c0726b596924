"""Screenshot an experiment report in headless Chromium with the network off; check that its plots render.

The browser gets ``--proxy-server=127.0.0.1:9`` (a closed port: every http(s) request fails) and
``--host-resolver-rules`` mapping every host to nothing, so a report that needed a CDN would render
without it. Checks: the page has inline ``<svg>`` figures with drawn paths, each SVG has a non-zero
rendered size, no resource was loaded from the network (Performance API), and the full-page screenshot
is not blank (many distinct colours).

Usage: ``.venv/bin/python scripts/screenshot_report.py runs/abtest/report.html [--png shot.png]``
(prints a JSON summary; exit 1 when a check fails).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def screenshot(report: str | Path, png: str | Path | None = None, width: int = 1300) -> dict[str, Any]:
    """Open ``report`` offline in headless Chromium; returns the figures found and the checks."""
    import numpy as np
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={width},900",
    ):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(Path(report).resolve().as_uri())
        info = driver.execute_script(
            """
            const svgs = [...document.querySelectorAll('svg')];
            const sizes = svgs.map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; });
            return {
              svgs: svgs.length,
              drawn: svgs.filter(s => s.querySelectorAll('path,rect,line,polyline,use').length > 2).length,
              zero_size: sizes.filter(([w, h]) => w < 10 || h < 10).length,
              sections: [...document.querySelectorAll('h2')].map(h => h.textContent),
              network: performance.getEntriesByType('resource').map(e => e.name)
                .filter(n => !n.startsWith('file:') && !n.startsWith('data:')),
              height: document.body.scrollHeight,
            };
            """
        )
        driver.set_window_size(width, min(int(info["height"]) + 100, 16000))
        raw = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    img = Image.open(io.BytesIO(raw)).convert("RGB")
    small = img.resize((max(img.width // 4, 1), max(img.height // 4, 1)))
    colours = len(np.unique(np.asarray(small).reshape(-1, 3), axis=0))
    if png is not None:
        Path(png).write_bytes(raw)
    info.update({"screenshot_px": [img.width, img.height], "distinct_colours": colours})
    info["ok"] = bool(
        info["svgs"] > 0 and info["drawn"] == info["svgs"] and info["zero_size"] == 0
        and not info["network"] and colours > 50
    )  # fmt: skip
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--png", type=Path, default=None, help="Write the screenshot here.")
    args = ap.parse_args()
    info = screenshot(args.report, args.png)
    print(json.dumps(info, indent=1))
    sys.exit(0 if info["ok"] else 1)


if __name__ == "__main__":
    main()

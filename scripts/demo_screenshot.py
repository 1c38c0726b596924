"""Screenshot of the demo page (docs/img/demo.png): the shipped catalogue, a quick model, headless Chromium.

Builds the service in this process (the shipped catalogue, a quick ranker trained on a random log of
``--bootstrap-users`` users, ``service.demo: true``), serves it with uvicorn on a free loopback port,
opens ``/`` in Debian's headless Chromium (Selenium), scrolls to the second slate, clicks an item and
saves the window. Usage: ``PYTHONPATH=src .venv/bin/python scripts/demo_screenshot.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from intentrank.config import load_config
from intentrank.service.app import create_app
from intentrank.service.bootstrap import quick_model
from intentrank.service.state import ServiceState
from intentrank.simulator.catalogue import build_catalogue
from intentrank.store import EventStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/demo.png"))
    ap.add_argument("--bootstrap-users", type=int, default=300)
    ap.add_argument("--user", type=int, default=7)
    args = ap.parse_args()
    cfg = load_config(
        None,
        [
            ("service.bootstrap_users", args.bootstrap_users, "--bootstrap-users"),
            ("service.demo", True, "demo"),
        ],
    )
    catalogue = build_catalogue(config=cfg.simulator.catalogue, seed=cfg.seed)
    model = quick_model(catalogue, cfg)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "events.duckdb") as store:
        state = ServiceState(cfg.service, catalogue.items, model, store, secrets.token_urlsafe(24))
        server = uvicorn.Server(uvicorn.Config(create_app(state), port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.1)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1000"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            say = lambda m: print(f"[screenshot] {m}", flush=True)  # noqa: E731
            wait = WebDriverWait(driver, 300)
            driver.get(f"http://127.0.0.1:{port}/")
            items = lambda: driver.find_elements(By.CSS_SELECTOR, "#feed li.item")  # noqa: E731
            wait.until(lambda d: len(items()) >= 20)
            say("first slate shown")
            driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
            wait.until(lambda d: len(items()) >= 40)
            say("second slate shown")
            # an item of the newest page (the earlier pages' items went back as impressions already)
            last = items()[-20:]
            target = next((e for e in last if "heavy" in (e.get_attribute("class") or "")), last[0])
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
            target.click()
            say("clicked")
            wait.until(lambda d: "acknowledged" in target.text)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        except Exception:
            driver.save_screenshot(str(args.out.with_suffix(".failed.png")))
            say("status line: " + driver.find_element(By.ID, "status").text)
            raise
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(10)
            state.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

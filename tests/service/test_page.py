"""The demo page at /: served with its assets, and driven in headless Chromium (Selenium) against a real
uvicorn server: it loads a slate, scrolling brings the next one without repeats, the arm switches, a click
is posted and acknowledged; a screenshot is saved."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from intentrank.service.app import create_app
from intentrank.service.state import ServiceState

from .conftest import AUTH, make_state
from .live import live_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture()
def demo_state(tmp_path: Path, tiny: Any) -> Iterator[ServiceState]:
    st = make_state(tmp_path, tiny, demo=True)
    yield st
    st.close()


def test_page_and_assets_are_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/page/app.js">' in r.text and "https://" not in r.text  # no CDN
    assert 'name="intentrank-demo-token" content=""' in r.text  # demo off: no token handed out
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        a = client.get(f"/page/{name}")
        assert a.status_code == 200 and kind in a.headers["content-type"] and len(a.text) > 100
    assert client.get("/page/secret.py").status_code == 404
    arms = client.get("/v1/arms").json()
    assert arms["arms"] == ["unmitigated", "heuristic"] and arms["demo_events"] is False


def test_demo_token_admits_events_only(demo_state: ServiceState) -> None:
    client = TestClient(create_app(demo_state))
    html = client.get("/").text
    token = html.split('name="intentrank-demo-token" content="')[1].split('"')[0]
    assert len(token) >= 16 and token != demo_state.token
    demo = {"Authorization": f"Bearer {token}"}
    slate = client.post("/v1/feed", json={"user_id": 3, "session_id": "p"}).json()
    ev = {"slate_id": slate["slate_id"], "item_id": slate["items"][0]["item_id"], "click": False}
    assert client.post("/v1/events", json={"events": [ev]}, headers=demo).status_code == 200
    assert client.post("/v1/models/rollback", headers=demo).status_code == 403  # not an admin token
    assert client.post("/v1/items", json={"retire": [0]}, headers=demo).status_code == 403
    assert client.post("/v1/items", json={"retire": [0]}, headers=AUTH).status_code == 200


def _driver() -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromedriver are not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,900"):  # fmt: skip
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def test_page_in_headless_chromium(demo_state: ServiceState, tmp_path: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _driver()
    wait = WebDriverWait(driver, 30)
    items = lambda: driver.find_elements(By.CSS_SELECTOR, "#feed li.item")  # noqa: E731
    try:
        with live_server(create_app(demo_state)) as url:
            driver.get(url + "/")
            wait.until(lambda d: len(items()) >= 20)
            first = [e.get_attribute("data-item-id") for e in items()]
            badges = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#feed .badge")}
            assert badges <= {"non", "light", "heavy"} and badges
            assert all("clickbait" in e.text for e in items()[:20])
            # scroll to the end: the next slate of the same session comes, with no repeats
            driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
            wait.until(lambda d: len(items()) >= 40)
            ids = [e.get_attribute("data-item-id") for e in items()]
            assert ids[: len(first)] == first and len(set(ids)) == len(ids)
            assert len({e.get_attribute("data-slate-id") for e in items()}) >= 2
            # switch the arm: a new session of the other arm
            select = Select(driver.find_element(By.ID, "arm"))
            other = next(o.text for o in select.options if o.text != select.first_selected_option.text)
            select.select_by_visible_text(other)
            mark = "const m = document.querySelector('.page-mark'); return m ? m.textContent : '';"
            wait.until(lambda d: d.execute_script(mark).endswith(other))
            wait.until(lambda d: len(items()) >= 20)
            # click an item: its event is posted and acknowledged
            target = items()[2]
            slate_id = int(target.get_attribute("data-slate-id"))
            item_id = int(target.get_attribute("data-item-id"))
            # into the middle of the viewport first: the sticky header would take a click at the top edge
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
            target.click()
            try:  # a click the page never saw (e.g. taken by the sticky header under load) is clicked again
                WebDriverWait(driver, 5).until(lambda d: target.find_element(By.CSS_SELECTOR, ".ack").text)
            except TimeoutException:
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
                target.click()
            try:
                wait.until(lambda d: "acknowledged" in target.text or "✗" in target.text)
            except TimeoutException:
                status = driver.find_element(By.ID, "status").text
                msg = f"click not acknowledged: item {target.text!r}; status {status!r}"
                raise AssertionError(msg) from None
            assert "acknowledged" in target.text, target.text
            driver.save_screenshot(str(tmp_path / "demo.png"))
            status = driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert demo_state.slates.acknowledged(slate_id, item_id)
    assert demo_state.clicks.of(0) is not None and "events acknowledged" in status
    rec = demo_state.slates.get(slate_id)
    assert rec is not None and rec.arm == other

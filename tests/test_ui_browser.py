"""The UI in a real headless Chromium: create a study, watch it live, click the Pareto front,
stop and resume it, explore and export. Screenshots go to ``artifacts/screenshots/``.

Runs a real background search (quickstart space, digits, 40 epochs per trial) against a real
SQLite file, through the same ``workbench resume`` process the UI starts for users.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TRIALS = 8  # x 40 epochs (~1-2 s each): Stop lands while the search runs, even on a quiet machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The app on a free localhost port over a fresh SQLite file; its URL and storage."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs it: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.chdir(ROOT)  # background drivers start from here (as `make run` does)
    from storage import Storage
    from ui import build_app

    db = Storage(f"sqlite:///{tmp_path / 'browser.db'}")
    app = build_app(db)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", db
    try:  # never leave a search running behind the test
        from ui import control

        for rec in db.list_studies():
            if control.driver_alive(rec.config, rec.name):
                os.killpg(rec.config["driver"]["pid"], 9)
    finally:
        app.close()
        db.close()


@pytest.fixture
def page():
    from playwright.sync_api import expect, sync_playwright

    # expect() keeps its own 5 s default; on a busy 2-core CI machine the page's first load
    # event (which fills the status line) has taken longer than that
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                    else shutil.which("chromium"), args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(30_000)
        yield pg
        browser.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _number_input(page, label: str):
    return page.get_by_label(label, exact=True)


def test_create_watch_click_stop_resume_explore(served, page):
    from playwright.sync_api import expect

    url, db = served
    page.goto(url)
    expect(page.get_by_text("Create a study")).to_be_visible()
    expect(page.locator("#wb-create")).to_be_visible()
    expect(page.locator("#wb-searcher-summary")).to_contain_text("random")
    expect(page.locator("#wb-status")).to_contain_text("No studies yet")
    _shot(page, "01-studies-empty")

    # -- create a small real study from the form ----------------------------------------------
    page.get_by_label("name (blank: generated)").fill("browser")
    _number_input(page, "trials").fill(str(TRIALS))
    _number_input(page, "epochs per trial").fill("40")
    page.locator("#wb-create").click()
    progress = page.locator("#wb-progress")
    expect(progress).to_contain_text("browser", timeout=30_000)
    expect(progress).to_contain_text(re.compile(r"[1-9]\d* complete"), timeout=90_000)

    # -- stop it while it runs ----------------------------------------------------------------
    page.get_by_role("button", name="Stop", exact=True).last.click()
    expect(page.locator("#wb-status")).to_contain_text(re.compile("stop requested|interrupted"))
    expect(progress).to_contain_text("state stopped", timeout=60_000)
    done = db.count_trials("browser")
    assert done["complete"] + done["failed"] < TRIALS, "the study finished before the stop"

    # -- live view: Pareto plot, diagrams, table ------------------------------------------------
    points = page.locator("#wb-pareto .scatterlayer .point")
    expect(points.first).to_be_visible()
    expect(page.locator("#wb-newest svg").first).to_be_visible()
    expect(page.locator("#wb-best-diagram svg").first).to_be_visible()
    expect(page.locator("#wb-trials")).to_contain_text("complete")
    _shot(page, "02-live-stopped")

    # -- click a point of the front: that trial is selected ------------------------------------
    front = points.last  # the front is drawn after the dominated points
    front.scroll_into_view_if_needed()
    box = front.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    info = page.locator("#wb-trial-info")
    expect(info).to_contain_text(re.compile(r"trial #\d+ ·"), timeout=20_000)
    number = int(re.search(r"trial #(\d+)", info.inner_text()).group(1))
    assert db.get_trial("browser", number).state.value == "complete"
    expect(page.locator("#wb-trial-diagram svg").first).to_be_visible()
    expect(page.locator("#wb-curves .js-plotly-plot")).to_be_visible()
    _shot(page, "03-trial-selected")

    # -- resume: it finishes in the background -------------------------------------------------
    page.get_by_role("button", name="Start / resume").last.click()
    expect(progress).to_contain_text(f"{TRIALS} / {TRIALS} trials", timeout=120_000)
    expect(progress).to_contain_text("state finished", timeout=30_000)

    # -- select a trial from the table and export it --------------------------------------------
    page.locator('#wb-trials [data-testid="cell-2-1"]').click()
    expect(info).to_contain_text("trial #2 ·")
    page.locator("#wb-export").click()
    link = page.locator("#wb-export-file a").first
    expect(link).to_have_attribute("href", re.compile(r"browser-trial2\.json$"))
    exported = json.loads(page.request.get(link.get_attribute("href")).body())
    assert exported["decisions"] == db.get_trial("browser", 2).arch_decisions
    _shot(page, "04-live-finished")

    # -- explorer: a malformed string is explained, a sample is drawn ----------------------------
    page.get_by_role("tab", name="Architecture explorer").click()
    page.get_by_label("space", exact=True).last.click()
    page.get_by_role("option", name="einspace", exact=True).click()
    page.locator("#wb-x-text textarea").fill("sequential[computation[linear(16)], oops")
    page.locator("#wb-x-show").click()
    expect(page.locator("#wb-x-message")).to_contain_text("line 1, column")
    page.get_by_role("button", name="Sample a random one").click()
    expect(page.locator("#wb-x-message")).to_contain_text("valid einspace architecture")
    expect(page.locator("#wb-x-diagram svg").first).to_be_visible()
    _shot(page, "05-explorer")

    page.get_by_role("tab", name="Studies").click()
    expect(page.locator("#wb-studies")).to_contain_text("browser")
    _shot(page, "06-studies")

"""The UI in a real headless Chromium, one app and one page for the whole module (browsers are
CPU-heavy): each test continues where the previous one left the page, and each checks one of
the interaction bugs of issue 17 (the assertions fail on the UI before the fixes) or a view.

Studies run for real: ``evo1`` through the same detached ``workbench resume`` process the UI
starts for users (evolution on quickstart, a 0.4 s evaluator per trial, no training), ``cli1``
written from this process as the CLI would (einspace, seeded with resnet18). Screenshots of
the views go to ``docs/screenshots/`` (the ones docs/ui.md shows).
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
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TRIALS = 150  # x 0.4 s: the search is still running while the first checks are made (and the stops)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# every browser test runs on SQLite and then on PostgreSQL (WORKBENCH_BROWSER_DB=sqlite or
# =postgresql runs one of them)
BACKENDS = [b for b in ("sqlite", "postgresql")
            if os.environ.get("WORKBENCH_BROWSER_DB", b) == b]


@pytest.fixture(scope="module", params=BACKENDS)
def served(tmp_path_factory, request):
    """The app on a free localhost port over a fresh SQLite file or a fresh database on the
    test PostgreSQL server; its URL and storage."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs it: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    cwd = os.getcwd()
    os.chdir(ROOT)  # background drivers start from here (as `make run` does)
    from storage import Storage
    from ui import build_app

    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'browser.db'}"
    db = Storage(url)
    from ui.policy import ServePolicy

    # the study form names a test evaluator: this server allows the tests package's code
    app = build_app(db, ServePolicy(frozenset({"tests"}), ROOT))
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", db
    try:  # never leave a search running behind the test
        from ui import control

        for rec in db.list_studies():
            lease = db.lease(rec.name)
            if control.driver_alive(lease):
                os.killpg(lease.pid, 9)
    finally:
        app.close()
        db.close()
        os.chdir(cwd)


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import expect, sync_playwright

    # expect() keeps its own 5 s default; a busy 2-core CI machine needs longer
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                    else shutil.which("chromium"), args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(30_000)
        pg.on("dialog", lambda d: d.accept())  # the delete confirmation
        pg.goto(served[0])
        yield pg
        browser.close()


def _shot(locator, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SHOTS / f"{name}.png"))


def _expect():
    from playwright.sync_api import expect

    return expect


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def _plot_width(page, elem_id: str) -> float:
    return page.locator(f"#{elem_id} .main-svg").first.bounding_box()["width"]


def test_form_errors_name_fields_not_cli_flags(page):
    expect = _expect()
    expect(page.locator("#wb-status")).to_contain_text("No studies yet")
    objectives = page.locator("#wb-f-objectives textarea, #wb-f-objectives input").first
    objectives.fill("acc,,bogus")
    page.locator("#wb-create").click()
    msg = page.locator("#wb-create-msg")
    expect(msg).to_contain_text("objectives")
    assert "--" not in msg.inner_text()
    objectives.fill("acc,params")


def test_create_and_the_message_stays_beside_it(page):
    expect = _expect()
    page.get_by_label("name (blank: generated)").fill("evo1")
    _choose(page, "wb-create-searcher", "evolution")
    page.get_by_label("trials", exact=True).fill(str(TRIALS))
    page.locator("#wb-f-evaluator textarea, #wb-f-evaluator input").first.fill(
        "tests.evaluators:paced_score")
    _shot(page.locator("#wb-create-box"), "01-create")
    page.locator("#wb-create").click()
    live_msg = page.locator("#wb-live-msg")
    expect(live_msg).to_contain_text("started study evo1")
    progress = page.locator("#wb-progress")
    expect(progress).to_contain_text(re.compile(r"[1-9]\d* complete"), timeout=60_000)
    before = progress.inner_text()
    expect(progress).not_to_have_text(before, timeout=20_000)  # at least one live refresh
    expect(live_msg).to_contain_text("started study evo1")  # ... did not blank the message


def test_plots_drawn_in_a_hidden_tab_fill_their_box(page):
    expect = _expect()
    _tab(page, "Studies")
    progress = page.locator("#wb-progress")
    before = progress.inner_text()
    expect(progress).not_to_have_text(before, timeout=20_000)  # redrawn while hidden
    _tab(page, "Live study")
    expect(page.locator("#wb-best .main-svg").first).to_be_visible()
    page.wait_for_timeout(500)
    # the best-so-far plot spans the page (1400 px); a hidden redraw used to leave it at 700
    assert _plot_width(page, "wb-best") > 1000


def test_zoom_survives_a_refresh_with_a_new_trial(page):
    expect = _expect()
    zoomed_in = ("() => document.querySelector('#wb-best .js-plotly-plot')"
                 "._fullLayout.xaxis.autorange === false")
    from playwright.sync_api import Error

    for _ in range(6):  # a redraw landing mid-drag cancels (or detaches) it: drag again
        plot = page.locator("#wb-best .nsewdrag").first
        try:
            plot.scroll_into_view_if_needed(timeout=5_000)  # the mouse reaches what is shown
            box = plot.bounding_box(timeout=5_000)
        except Error:
            continue
        if box is None:
            continue
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=8)
        page.mouse.up()
        page.wait_for_timeout(200)
        if page.evaluate(zoomed_in):
            break
    assert page.evaluate(zoomed_in), "could not zoom the best-so-far plot"
    get_range = ("() => document.querySelector('#wb-best .js-plotly-plot')"
                 "._fullLayout.xaxis.range.map(v => Math.round(v * 100) / 100)")
    zoomed = page.evaluate(get_range)
    progress = page.locator("#wb-progress")
    before = progress.inner_text()
    expect(progress).not_to_have_text(before, timeout=20_000)  # a new trial was drawn
    same = f"() => JSON.stringify(({get_range})()) === '{json.dumps(zoomed, separators=(',', ':'))}'"
    page.wait_for_function(same, timeout=30_000)  # put back once the redraw settles (a busy CI)
    page.locator("#wb-best .js-plotly-plot").first.dblclick()  # back to the whole range


def test_stop_now_then_the_studies_table_shows_each_action(page, served):
    expect = _expect()
    url, db = served
    page.locator("#wb-live-stop-now").click()
    expect(page.locator("#wb-live-msg")).to_contain_text("stopping evo1 now")
    expect(page.locator("#wb-progress")).to_contain_text("state stopped", timeout=30_000)
    assert db.count_trials("evo1")["running"] == 0  # cancelled trials were re-queued
    _tab(page, "Studies")
    _choose(page, "wb-study", "evo1")
    page.get_by_role("button", name="Start / resume").first.click()
    studies = page.locator("#wb-studies")
    # the table is computed after the action: it already shows the started driver
    expect(studies).to_contain_text(re.compile(r"starting|running"), timeout=5_000)
    expect(studies).to_contain_text("running", timeout=30_000)  # it refreshes itself
    page.locator("#wb-stop").click()
    expect(page.locator("#wb-studies-msg")).to_contain_text(
        re.compile(r"stopping evo1 after|evo1 is starting"))
    expect(studies).to_contain_text(re.compile("stopping|stopped"), timeout=5_000)
    expect(studies).to_contain_text("stopped", timeout=30_000)


def _cli_study(db) -> None:
    """``cli1``: einspace, trial #0 is resnet18, written from this process as the CLI would."""
    from workbench.spaces import get_space
    from workbench.study import StudyConfig, create_study, enqueue, parse_objectives, run_study

    cfg = StudyConfig(space="einspace", task="synthetic-cifar", searcher="random",
                      objectives=parse_objectives("acc,params"), trials=3, executor="inline",
                      evaluator="tests.evaluators:param_score")
    create_study(db, "cli1", cfg)
    space = get_space("einspace", (3, 32, 32), 10)
    rn = space.seed("resnet18")
    enqueue(db, "cli1", rn)
    run_study(db, "cli1")


def test_a_study_made_by_the_cli_appears_without_reload(page, served):
    url, db = served
    _cli_study(db)
    _expect()(page.locator("#wb-studies")).to_contain_text("cli1", timeout=15_000)
    _shot(page.locator("#wb-studies"), "02-studies")


def test_a_bad_curve_box_blocks_nothing_and_selection_follows_the_study(page, served):
    expect = _expect()
    url, db = served
    _tab(page, "Live study")
    _choose(page, "wb-live-study", "evo1")
    expect(page.locator("#wb-progress")).to_contain_text("evo1")
    page.locator('#wb-trials [data-testid="cell-2-0"]').click()
    info = page.locator("#wb-trial-info")
    expect(info).to_contain_text("evo1 · trial #2")
    box = page.locator("#wb-curve-numbers textarea, #wb-curve-numbers input").first
    box.fill("0, x9")
    box.press("Enter")
    expect(page.locator("#wb-curve-msg")).to_contain_text("x9")
    page.locator('#wb-trials [data-testid="cell-3-0"]').click()
    expect(info).to_contain_text("evo1 · trial #3")  # the bad box did not block the click
    expect(page.locator("#wb-card")).to_contain_text("evo1 · trial #3")
    _shot(page.locator("#wb-pareto").locator("xpath=../../.."), "03-pareto-and-card")
    # another study: the selection goes with its study, export refuses to guess
    _choose(page, "wb-live-study", "cli1")
    expect(page.locator("#wb-progress")).to_contain_text("cli1")
    expect(info).not_to_contain_text("evo1")
    page.locator("#wb-export").click()
    expect(page.locator("#wb-trial-msg")).to_contain_text("expected a selected trial")
    trial = page.locator("#wb-trial input, #wb-trial textarea").first
    trial.fill("0")
    trial.press("Enter")
    expect(info).to_contain_text("cli1 · trial #0")
    page.locator("#wb-export").click()
    link = page.locator("#wb-export-file a").first
    expect(link).to_have_attribute("href", re.compile(r"cli1-trial0\.json$"))
    exported = json.loads(page.request.get(link.get_attribute("href")).body())
    assert exported["decisions"] == db.get_trial("cli1", 0).arch_decisions


def test_depth_redraws_every_diagram_and_explorer_draws_at_once(page):
    expect = _expect()
    diagrams = {k: page.locator(f"#{k} .wb-diagram").first
                for k in ("wb-trial-diagram", "wb-newest", "wb-best-diagram", "wb-card-diagram")}
    for d in diagrams.values():  # all drawn (the live ones come with the next refresh)
        expect(d).to_have_attribute("data-depth", re.compile(r"^\d+$"), timeout=60_000)
    trial_svg = page.locator("#wb-trial-diagram svg").first
    height = trial_svg.get_attribute("height")
    page.locator("#wb-depth input[type=range]").first.fill("1")  # as a drag ends at 1
    # every diagram on the page is redrawn at the new depth (read from the element, since a
    # small architecture -- which trial is newest or best depends on timing -- may look the same)
    for d in diagrams.values():
        expect(d).to_have_attribute("data-depth", "1", timeout=60_000)
    expect(trial_svg).not_to_have_attribute("height", height or "")  # and the drawing changed
    _shot(page.locator("#wb-trial-diagram"), "04-diagram-depth-1")
    page.get_by_role("button", name="Open in explorer").last.click()
    expect(page.locator("#wb-x-diagram svg").first).to_be_visible()
    expect(page.locator("#wb-x-message")).to_contain_text("valid einspace architecture")


def test_explorer_seed_boxes_agree(page):
    expect = _expect()
    seed = page.locator("#wb-x-seed input").first
    seed.fill("5")
    page.get_by_role("button", name="Sample a random one").click()
    expect(page.locator("#wb-x-message")).to_contain_text("sampled with seed 5")
    expect(seed).to_have_value("5")  # the seed that was drawn
    page.get_by_role("button", name="Sample a random one").click()
    expect(page.locator("#wb-x-message")).to_contain_text("sampled with seed 6")
    expect(seed).to_have_value("6")
    _choose(page, "wb-x-seed-name", "resnet18")
    text = page.locator("#wb-x-text textarea")
    expect(text).to_have_value("resnet18")
    expect(page.locator("#wb-x-message")).not_to_contain_text("sampled", timeout=60_000)  # drawn
    text.click()
    text.press("End")
    text.type(" edited")  # typed: fill() sets the value without gradio's input event
    expect(page.locator("#wb-x-seed-name input").first).to_have_value("")
    _shot(page.locator("#wb-x-diagram"), "05-explorer")


def test_table_headers_do_not_wrap(page):
    _tab(page, "Live study")
    heights = page.evaluate("() => [...document.querySelectorAll('#wb-trials th')]"
                            ".map(th => th.getBoundingClientRect().height)")
    assert heights and max(heights) < 60


def test_analysis_views_and_the_brush(page):
    expect = _expect()
    _choose(page, "wb-live-study", "evo1")
    expect(page.locator("#wb-progress")).to_contain_text("evo1")
    _tab(page, "Analysis")
    expect(page.locator("#wb-a-title")).to_contain_text("analysis of evo1")
    expect(page.locator("#wb-parcoords .js-plotly-plot")).to_be_visible()
    expect(page.locator("#wb-importance .main-svg").first).to_be_visible()
    expect(page.locator("#wb-timeline .main-svg").first).to_be_visible()
    expect(page.locator("#wb-hv .main-svg").first).to_be_visible()
    # evo1 is an evolution study: no predictor, so the rank-quality plot says what would show
    expect(page.locator("#wb-rank")).to_contain_text("no predictor rank quality")
    page.evaluate("""() => {
      const gd = document.querySelector('#wb-parcoords .js-plotly-plot');
      const dims = gd.data[0].dimensions, last = dims.length - 1;
      const v = dims[last].values, lo = Math.min(...v), hi = Math.max(...v);
      window.Plotly.restyle(gd, {[`dimensions[${last}].constraintrange`]:
                                 [[lo, lo + (hi - lo) / 2]]});
    }""")
    expect(page.get_by_text("filtered by the parallel-coordinates brush")).to_be_visible()
    _shot(page.locator("#wb-parcoords"), "06-parallel-coordinates")
    _shot(page.locator("#wb-importance").locator("xpath=../.."), "07-importance-and-slice")
    _shot(page.locator("#wb-hv").locator("xpath=.."), "08-hypervolume-and-timeline")


def test_compare_two_studies(page):
    expect = _expect()
    _tab(page, "Compare studies")
    for name in ("evo1", "cli1"):
        _choose(page, "wb-cmp-studies", name)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator("#wb-cmp-best .legend")).to_contain_text("cli1")
    expect(page.locator("#wb-cmp-fronts .legend")).to_contain_text("evo1")
    _shot(page.locator("#wb-cmp-best").locator("xpath=.."), "09-compare")


def test_manage_duplicate_delete_and_report(page, served):
    expect = _expect()
    url, db = served
    _tab(page, "Studies")
    _choose(page, "wb-study", "evo1")
    page.get_by_text("Manage the selected study").click()
    page.get_by_label("new name (rename / duplicate)").fill("evo2")
    page.get_by_role("button", name="Duplicate (same config, new name)").click()
    expect(page.locator("#wb-studies-msg")).to_contain_text("created study evo2")
    expect(page.locator("#wb-studies")).to_contain_text("evo2")
    _choose(page, "wb-study", "evo2")
    page.locator("#wb-delete").click()
    expect(page.locator("#wb-studies-msg")).to_contain_text("deleted study evo2")
    assert "evo2" not in [s.name for s in db.list_studies()]
    _tab(page, "Live study")
    page.get_by_role("button", name="Report (HTML)").click()
    link = page.locator("#wb-report-file a").first
    expect(link).to_have_attribute("href", re.compile(r"report\.html$"))
    assert b"Study evo1" in page.request.get(link.get_attribute("href")).body()


def test_macro_view_collapses_repeats_in_every_diagram(page, served):
    """The view control's macro view: ResNet-18's 8 blocks become ``×2`` and ``×3`` runs, in
    the selected trial's diagram and the card beside the Pareto plot alike."""
    expect = _expect()
    url, db = served
    if "cli1" not in {s.name for s in db.list_studies()}:  # run on its own (-k)
        _cli_study(db)
    _tab(page, "Live study")
    _choose(page, "wb-live-study", "cli1")
    expect(page.locator("#wb-progress")).to_contain_text("cli1")
    trial = page.locator("#wb-trial input, #wb-trial textarea").first
    trial.fill("0")  # resnet18
    trial.press("Enter")
    expect(page.locator("#wb-trial-info")).to_contain_text("cli1 · trial #0")
    diagrams = {k: page.locator(f"#{k} svg").first for k in ("wb-trial-diagram", "wb-card-diagram")}
    for d in diagrams.values():
        expect(d).to_be_visible()
        expect(d).not_to_contain_text("×2 [residual block")
    heights = {k: d.get_attribute("height") for k, d in diagrams.items()}
    page.locator("#wb-view label", has_text="macro").click()
    for k, d in diagrams.items():
        expect(d).not_to_have_attribute("height", heights[k] or "", timeout=60_000)
        expect(d).to_contain_text("×2 [residual block → relu]")
        expect(d).to_contain_text("width 128 → 256 → 512")
        # drawn once per run: well under half as tall (5,800 px in the dataflow view)
        assert float(d.get_attribute("height").rstrip("pt")) < \
            float((heights[k] or "0").rstrip("pt")) / 1.9
    page.locator("#wb-trial-diagram").get_by_role("button", name="fit").click()  # all of it
    _shot(page.locator("#wb-trial-diagram"), "10-diagram-macro")
    page.locator("#wb-view label", has_text="dataflow").click()
    expect(diagrams["wb-trial-diagram"]).to_have_attribute("height", heights["wb-trial-diagram"])

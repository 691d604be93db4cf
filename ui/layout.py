"""Layout of the workbench UI: one ``_render_*`` function per area, no behaviour.

Each function creates its components inside the current ``gr.Blocks`` context and stores them on
the shared :class:`Components` namespace; ``ui.wiring`` attaches every event afterwards (one wiring function per page).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TypedDict

import gradio as gr

from storage.records import TrialState
from ui.panels import LiveState
from workbench.diagrams import DEFAULT_DEPTH, VIEWS


class FormDefaults(TypedDict):
    """The new-study form's first values (one key per field)."""

    space: str
    task: str
    searcher: str
    trials: int
    epochs: int
    steps: int
    repeats: int
    workers: int
    seed: int
    objectives: str


# Quick, sensible defaults for the first study on an empty database: trains in about a minute
# on a laptop CPU.
DEFAULTS: FormDefaults = {"space": "quickstart", "task": "mnist1d", "searcher": "random", "trials": 20,
            "epochs": 3, "steps": 0, "repeats": 1, "workers": 1, "seed": 0,
            "objectives": "acc,params"}

CSS = """
.wb-diagram { border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px; background: #fff; }
.wb-diagram .wb-svg { max-height: 640px; overflow: auto; cursor: grab; }
.wb-diagram .wb-svg svg { max-width: none; height: auto; }
.wb-card .wb-diagram .wb-svg { max-height: 300px; }
.wb-caption { font-weight: 600; margin-bottom: 4px; color: #374151; }
.wb-tools { float: right; display: flex; gap: 2px; }
.wb-tools button { font-size: 12px; padding: 0 6px; border: 1px solid #d1d5db; border-radius: 4px;
                   background: #f9fafb; cursor: pointer; }
.wb-empty { color: #6b7280; font-style: italic; padding: 24px; text-align: center; }
.wb-pair { display: flex; gap: 8px; align-items: flex-start; }
.wb-pair > .wb-diagram { flex: 1 1 0; min-width: 0; }
.wb-msg { min-height: 1.6em; }
.wb-msg p { margin: 0; }
#wb-trials th, #wb-trials th *, #wb-a-trials th, #wb-a-trials th *, #wb-studies th,
#wb-studies th * { white-space: nowrap; word-break: keep-all; overflow-wrap: normal; }
.wb-hidden { display: none !important; }
"""

# Browser-side behaviour gradio has no component for, bound once and re-bound as gradio
# replaces the page's HTML (a MutationObserver):
# * plot clicks: gr.Plot has no select event, so plotly's own click event on the Pareto,
#   best-so-far, slice and compare plots types the point's trial number (its customdata) into
#   the "trial #" box, whose change event does the rest;
# * the parallel-coordinates brush: plotly's restyle event carries the brushed ranges; they are
#   written (as JSON) into a hidden box whose input event filters the trial table;
# * plots drawn while their tab was hidden are laid out at plotly's default 700 px: a
#   ResizeObserver on each plot re-lays it out whenever its size changes (e.g. its tab shows);
# * diagrams: pan by dragging, zoom with the buttons or ctrl + wheel, fit to the box; the
#   lineage view scrolls to the first highlighted (changed) part.
CLICK_JS = r"""
() => {
  const setBox = (sel, text) => {
    const input = document.querySelector(sel + " input, " + sel + " textarea");
    if (!input) return;
    input.value = String(text);
    input.dispatchEvent(new Event("input", {bubbles: true}));
  };
  // uirevision by hand: gradio re-creates a plot (Plotly.newPlot) whenever its config object
  // differs, which drops plotly's own uirevision memory; so remember the user's zoom and pan
  // per plot and put them back after a redraw with the same uirevision
  // kept per plot box (its wb- id), not on the plot element: gradio sometimes replaces the
  // element itself, and a view stored on it would be lost with it
  const views = window.__wbViews = window.__wbViews || {};
  const viewOf = (gd) => {
    const box = gd.closest("[id^='wb-']");
    if (!box) return null;
    return views[box.id] = views[box.id] || {rev: undefined, ranges: null, applying: false};
  };
  const keepView = (gd) => {
    if (gd.__wbKept || typeof gd.on !== "function") return;
    const st = viewOf(gd);
    if (!st) return;
    gd.__wbKept = true;
    gd.on("plotly_relayout", (ev) => {
      if (st.applying || !ev) return;
      const r = {};
      for (const k of Object.keys(ev)) {
        if (/^[xy]axis\d*\.(range(\[\d\])?|autorange)$/.test(k)) r[k] = ev[k];
      }
      if (!Object.keys(r).length) return;
      const reset = Object.keys(r).some((k) => k.endsWith("autorange"));
      if (st.rev !== gd.layout.uirevision) st.ranges = null;
      st.rev = gd.layout.uirevision;
      st.ranges = reset ? null : Object.assign(st.ranges || {}, r);
    });
  };
  // called (debounced) after any change to the page: a redraw replaced the plot's svg
  const restoreViews = () => {
    if (!window.Plotly) return;
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      const st = gd.__wbKept ? viewOf(gd) : null;
      if (!st || st.applying || !st.ranges || !gd.layout || !gd._fullLayout) continue;
      if (gd.layout.uirevision !== st.rev) { st.ranges = null; continue; }
      const axes = new Set(Object.keys(st.ranges).map((k) => k.split(".")[0]));
      const lost = [...axes].some((a) => gd._fullLayout[a] && gd._fullLayout[a].autorange);
      if (!lost) continue;
      st.applying = true;
      Promise.resolve(window.Plotly.relayout(gd, st.ranges)).finally(() => {
        st.applying = false;
      });
    }
  };
  let restoreTimer = null;
  const bindPlots = () => {
    for (const gd of document.querySelectorAll(".js-plotly-plot")) keepView(gd);
    for (const id of ["wb-pareto", "wb-best", "wb-slice", "wb-cmp-best"]) {
      const root = document.getElementById(id);
      if (!root) continue;
      for (const gd of root.querySelectorAll(".js-plotly-plot")) {
        if (gd.__wbBound || typeof gd.on !== "function") continue;
        gd.__wbBound = true;
        gd.on("plotly_click", (ev) => {
          const pt = ev && ev.points && ev.points[0];
          if (!pt || pt.customdata === undefined || pt.customdata === null) return;
          const n = Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata;
          setBox("#wb-trial", n);
        });
      }
    }
    const pc = document.querySelector("#wb-parcoords .js-plotly-plot");
    if (pc && !pc.__wbBound && typeof pc.on === "function") {
      pc.__wbBound = true;
      pc.on("plotly_restyle", () => {
        const dims = (pc.data && pc.data[0] && pc.data[0].dimensions) || [];
        const ranges = {};
        for (const d of dims) if (d.constraintrange) ranges[d.label] = d.constraintrange;
        setBox("#wb-brush", JSON.stringify(ranges));
      });
    }
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      if (gd.__wbSized || !window.ResizeObserver) continue;
      gd.__wbSized = true;
      let last = 0;
      new ResizeObserver(() => {
        const w = gd.parentElement ? gd.parentElement.clientWidth : 0;
        if (w > 0 && Math.abs(w - last) > 2 && window.Plotly) {
          last = w;
          window.Plotly.Plots.resize(gd);
        }
      }).observe(gd.parentElement || gd);
    }
  };
  const bindDiagrams = () => {
    for (const box of document.querySelectorAll(".wb-diagram")) {
      const view = box.querySelector(".wb-svg");
      const svg = view && view.querySelector("svg");
      if (!svg || svg.__wbZoom) continue;
      svg.__wbZoom = true;
      const w0 = svg.width.baseVal.value || svg.getBBox().width;
      const h0 = svg.height.baseVal.value || svg.getBBox().height;
      let scale = 1;
      const apply = () => {
        svg.style.width = (w0 * scale) + "px";
        svg.style.height = (h0 * scale) + "px";
      };
      const tools = document.createElement("div");
      tools.className = "wb-tools";
      const add = (label, title, fn) => {
        const b = document.createElement("button");
        b.textContent = label; b.title = title; b.type = "button";
        b.onclick = (e) => { e.preventDefault(); fn(); apply(); };
        tools.appendChild(b);
      };
      const fit = () => {
        const sw = (view.clientWidth - 4) / w0, sh = (parseFloat(getComputedStyle(view)
          .maxHeight) || view.clientHeight || h0) / h0;
        scale = Math.max(0.05, Math.min(sw, sh, 4));
      };
      add("fit", "fit the whole diagram in the box", fit);
      add("−", "zoom out", () => { scale = Math.max(0.05, scale / 1.25); });
      add("+", "zoom in", () => { scale = Math.min(8, scale * 1.25); });
      add("1:1", "actual size", () => { scale = 1; });
      box.insertBefore(tools, box.firstChild);
      view.addEventListener("wheel", (e) => {
        if (!e.ctrlKey) return;
        e.preventDefault();
        scale = Math.min(8, Math.max(0.05, scale * (e.deltaY < 0 ? 1.1 : 1 / 1.1)));
        apply();
      }, {passive: false});
      let drag = null;
      view.addEventListener("mousedown", (e) => {
        drag = {x: e.clientX, y: e.clientY, l: view.scrollLeft, t: view.scrollTop};
      });
      window.addEventListener("mouseup", () => { drag = null; });
      view.addEventListener("mousemove", (e) => {
        if (!drag) return;
        view.scrollLeft = drag.l - (e.clientX - drag.x);
        view.scrollTop = drag.t - (e.clientY - drag.y);
      });
      if (box.closest(".wb-lineage")) {
        const hit = svg.querySelector('[stroke="#e41a1c"], [fill="#e41a1c"]');
        if (hit) {
          const r = hit.getBoundingClientRect(), v = view.getBoundingClientRect();
          view.scrollTop += r.top - v.top - 40;
          view.scrollLeft += r.left - v.left - 40;
        }
      }
    }
  };
  const bind = () => {
    bindPlots();
    bindDiagrams();
    clearTimeout(restoreTimer);
    restoreTimer = setTimeout(restoreViews, 150);
  };
  new MutationObserver(bind).observe(document.body, {childList: true, subtree: true});
  bind();
}
"""

# A delete asks the browser to confirm first; cancelling sends no study, which does nothing.
CONFIRM_DELETE_JS = """
(name, ...rest) => [confirm(`Delete study ${name} with all its trials? This cannot be undone.`)
                    ? name : null, ...rest]
"""


class Components(SimpleNamespace):
    """Every component the wiring needs, by name."""


def _render_header(c: Components) -> None:
    gr.Markdown("# NAS workbench\nSearch spaces, searchers, live circuit diagrams and Pareto "
                "fronts. Searches run in background processes: closing this page does not "
                "stop them.")
    c.status = gr.Markdown("", elem_id="wb-status", elem_classes="wb-msg")


def _msg(elem_id: str) -> gr.Markdown:
    """A message line beside an action: it shows what the action did until the next action."""
    return gr.Markdown("", elem_id=elem_id, elem_classes="wb-msg")


def _render_studies(c: Components, spaces: list[str], tasks: list[str],
                    searchers: list[str]) -> None:
    with gr.Tab("Studies", id="studies"):
        with gr.Accordion("Create a study", open=True, elem_id="wb-create-box") as c.create_box:
            _render_create_form(c, spaces, tasks, searchers)
        with gr.Row():
            c.refresh_studies = gr.Button("Refresh", size="sm", scale=0, min_width=90)
            c.study = gr.Dropdown(label="study", choices=[], scale=3, allow_custom_value=False,
                                  elem_id="wb-study")
            c.extra_trials = gr.Number(label="extra trials on resume", value=0, precision=0,
                                       minimum=0, scale=1)
            c.start_btn = gr.Button("Start / resume", variant="primary", scale=1)
            c.stop_btn = gr.Button("Stop after running trials", variant="stop", scale=1,
                                   elem_id="wb-stop")
            c.stop_now_btn = gr.Button("Stop now", variant="stop", scale=1, elem_id="wb-stop-now")
            c.open_btn = gr.Button("Open live view", scale=1)
        c.studies_msg = _msg("wb-studies-msg")
        with gr.Accordion("Manage the selected study: rename, duplicate, delete, note",
                          open=False):
            with gr.Row():
                c.m_name = gr.Textbox(label="new name (rename / duplicate)", scale=2)
                c.rename_btn = gr.Button("Rename", scale=1)
                c.duplicate_btn = gr.Button("Duplicate (same config, new name)", scale=1)
                c.delete_btn = gr.Button("Delete", variant="stop", scale=1, elem_id="wb-delete")
            with gr.Row():
                c.study_note = gr.Textbox(label="note on the study", lines=2, scale=4)
                c.study_note_btn = gr.Button("Save note", scale=1)
        c.studies = gr.Dataframe(label="studies (click a row to select it)", interactive=False,
                                 wrap=False, max_height=420, elem_id="wb-studies")
        c.studies_timer = gr.Timer(3.0, active=True)
        c.studies_sig = gr.State(None)


def _render_create_form(c: Components, spaces: list[str], tasks: list[str],
                        searchers: list[str]) -> None:
    with gr.Row():
        c.f_name = gr.Textbox(label="name (blank: generated)", scale=2)
        c.f_space = gr.Dropdown(label="search space", choices=spaces, value=DEFAULTS["space"],
                                scale=1)
        c.f_task = gr.Dropdown(label="task (name or name:PATH)", choices=tasks,
                               value=DEFAULTS["task"], allow_custom_value=True, scale=1)
        c.f_searcher = gr.Dropdown(label="searcher", choices=searchers,
                                   value=DEFAULTS["searcher"], scale=1,
                                   elem_id="wb-create-searcher")
    with gr.Row():
        c.f_task_options = gr.Textbox(label="task options (key=value, comma-separated; e.g. "
                                      "augment=crop+flip; see docs/tasks.md)", value="")
    with gr.Row():
        c.f_objectives = gr.Textbox(label="objectives (acc, params, flops, latency or "
                                    "metric:max|min)", value=DEFAULTS["objectives"], scale=2,
                                    elem_id="wb-f-objectives")
        c.f_trials = gr.Number(label="trials", value=DEFAULTS["trials"], precision=0, minimum=1)
        c.f_epochs = gr.Number(label="epochs per trial", value=DEFAULTS["epochs"], precision=0,
                               minimum=1)
        c.f_steps = gr.Number(label="steps per trial (0: use epochs)", value=DEFAULTS["steps"],
                              precision=0, minimum=0)
        c.f_repeats = gr.Number(label="training seeds per trial (mean is the score)",
                                value=DEFAULTS["repeats"], precision=0, minimum=1, maximum=100)
        c.f_workers = gr.Number(label="workers", value=DEFAULTS["workers"], precision=0,
                                minimum=1)
        c.f_seed = gr.Number(label="seed", value=DEFAULTS["seed"], precision=0)
    with gr.Row():  # zero-cost proxies (docs/searchers.md): metrics, a pre-filter, constraints
        c.f_proxies = gr.Textbox(label="proxies (zero-cost, recorded as metrics: synflow, "
                                 "naswot, snip, grad_norm; blank: none)", scale=2,
                                 elem_id="wb-f-proxies")
        c.f_prefilter = gr.Textbox(label="pre-filter (e.g. naswot:top0.25: train the best "
                                   "quarter of the proposals; blank: none)", scale=2,
                                   elem_id="wb-f-prefilter")
        c.f_constraints = gr.Textbox(label="constraints (e.g. naswot>=400, params<=100000)",
                                     scale=2, elem_id="wb-f-constraints")
    with gr.Row():
        with gr.Column(scale=3):
            c.f_summary = gr.Markdown(elem_id="wb-searcher-summary")
            c.f_options = gr.Dataframe(headers=["option", "value", "help"],
                                       label="searcher options (edit the value column)",
                                       interactive=True, wrap=True, static_columns=[0, 2],
                                       column_count=3)
        with gr.Column(scale=2):
            c.f_seeds = gr.CheckboxGroup(label="seed architectures (evolution: initial "
                                         "population; other searchers: evaluated first)",
                                         choices=[])
            c.f_keep = gr.Dropdown(label="keep trained weights", value="top:5",
                                   choices=["none", "top:5", "all"])
            c.f_memory = gr.Textbox(label="memory limit per trial (e.g. 4GB; blank: none)",
                                    elem_id="wb-f-memory")
            c.f_evaluator = gr.Textbox(label="custom evaluator module:function (optional, "
                                       "replaces training)", placeholder="tests.evaluators:"
                                       "param_score", elem_id="wb-f-evaluator")
    with gr.Row():
        c.create_btn = gr.Button("Create and start", variant="primary", elem_id="wb-create",
                                 scale=1)
        c.create_msg = gr.Markdown("", elem_id="wb-create-msg", elem_classes="wb-msg")


def _render_live(c: Components) -> None:
    with gr.Tab("Live study", id="live"):
        with gr.Row():
            c.live_study = gr.Dropdown(label="study", choices=[], scale=3,
                                       elem_id="wb-live-study")
            c.auto = gr.Checkbox(label="auto-refresh every 2 s", value=True, scale=1)
            c.refresh_live = gr.Button("Refresh now", size="sm", scale=0, min_width=110)
            c.live_start = gr.Button("Start / resume", scale=0, min_width=130)
            c.live_stop = gr.Button("Stop after running trials", variant="stop", scale=0,
                                    min_width=190, elem_id="wb-live-stop")
            c.live_stop_now = gr.Button("Stop now", variant="stop", scale=0, min_width=100,
                                        elem_id="wb-live-stop-now")
            c.report_btn = gr.Button("Report (HTML)", scale=0, min_width=130)
        c.live_msg = _msg("wb-live-msg")
        c.report_file = gr.File(label="study report", interactive=False, visible=False,
                                elem_id="wb-report-file")
        c.progress = gr.Markdown("choose a study", elem_id="wb-progress")
        c.live_status = _msg("wb-live-status")
        c.timer = gr.Timer(2.0, active=True)
        c.sig = gr.State(None)  # the signature of the study as last drawn
        c.live = gr.State(LiveState())  # the study on screen and the trial selected in it
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    c.x_metric = gr.Dropdown(label="x axis", choices=[], scale=1)
                    c.y_metric = gr.Dropdown(label="y axis", choices=[], scale=1)
                c.pareto = gr.Plot(label="Pareto front", elem_id="wb-pareto")
            with gr.Column(scale=2, elem_classes="wb-card"):
                c.card = gr.Markdown("click a point to see its trial here", elem_id="wb-card")
                c.card_diagram = gr.HTML(elem_id="wb-card-diagram")
                with gr.Row():
                    c.card_export = gr.Button("Export (format below)", size="sm",
                                              elem_id="wb-card-export")
                    c.card_explorer = gr.Button("Open in explorer", size="sm")
        c.best_plot = gr.Plot(label="best so far", elem_id="wb-best")
        with gr.Row():
            c.depth = gr.Slider(0, 8, value=DEFAULT_DEPTH, step=1,
                                label="diagram depth (0 = everything)", scale=2,
                                elem_id="wb-depth")
            # macro: repeated blocks drawn once (×N); for every diagram on the page, as depth
            c.view = gr.Radio(list(VIEWS), value="dataflow", label="diagram view", scale=1,
                              elem_id="wb-view")
        with gr.Row():
            c.newest_diagram = gr.HTML(elem_id="wb-newest")
            c.best_diagram = gr.HTML(elem_id="wb-best-diagram")
        _render_trial_table(c)
        _render_trial_panel(c)


def _render_trial_table(c: Components) -> None:
    with gr.Row():
        c.sort = gr.Dropdown(label="sort by", choices=["number"], value="number", scale=2)
        c.descending = gr.Checkbox(label="reverse", value=False, scale=1)
        c.states = gr.CheckboxGroup([s.value for s in TrialState],
                                    label="states (none = all)", scale=3)
        c.page = gr.Number(label="page", value=1, precision=0, minimum=1, scale=1)
        c.prev_page = gr.Button("◀", size="sm", scale=0, min_width=50)
        c.next_page = gr.Button("▶", size="sm", scale=0, min_width=50)
    c.page_info = gr.Markdown("")
    c.trials = gr.Dataframe(label="trials (click a row to select the trial)", interactive=False,
                            wrap=False, max_height=460, elem_id="wb-trials")


def _render_trial_panel(c: Components) -> None:
    gr.Markdown("### Selected trial")
    with gr.Row():
        c.trial = gr.Textbox(label="trial #", max_lines=1, elem_id="wb-trial", scale=1,
                             placeholder="click a point or a row, or type a number")
        with gr.Column(scale=2):
            c.curve_numbers = gr.Textbox(label="learning curves of trials (e.g. 3, 7, 12; "
                                         "blank: selected + best)", elem_id="wb-curve-numbers")
            c.curve_msg = _msg("wb-curve-msg")
        c.curve_metric = gr.Dropdown(["val_accuracy", "val_loss", "train_loss"],
                                     value="val_accuracy", label="curve metric",
                                     allow_custom_value=True, scale=1)
    c.trial_msg = _msg("wb-trial-msg")
    with gr.Row():
        with gr.Column(scale=1):
            c.trial_info = gr.Markdown("select a trial: click a point or a table row, or type "
                                       "its number", elem_id="wb-trial-info")
            c.curves = gr.Plot(label="learning curves", elem_id="wb-curves")
            with gr.Row():
                c.trial_note = gr.Textbox(label="note on this trial", lines=1, scale=3)
                c.trial_note_btn = gr.Button("Save note", scale=1)
        with gr.Column(scale=1):
            c.trial_diagram = gr.HTML(elem_id="wb-trial-diagram")
    with gr.Accordion("Lineage (evolved candidates)", open=False):
        c.lineage_text = gr.Markdown("", elem_id="wb-lineage-text")
        c.lineage_html = gr.HTML(elem_id="wb-lineage")
    with gr.Row():
        c.export_fmt = gr.Radio(["json", "py", "onnx", "torchscript", "pt2", "weights", "svg"],
                                value="json", label="export format", scale=3)
        c.export_btn = gr.Button("Export trial", scale=1, elem_id="wb-export")
        c.to_explorer = gr.Button("Open in explorer", scale=1)
    c.export_file = gr.File(label="download", interactive=False, elem_id="wb-export-file",
                            visible=False)


def _render_analysis(c: Components) -> None:
    with gr.Tab("Analysis", id="analysis") as c.analysis_tab:
        with gr.Row():
            c.a_title = gr.Markdown("analysis of the study chosen on the live page",
                                    elem_id="wb-a-title")
            c.a_refresh = gr.Button("Refresh", size="sm", scale=0, min_width=90)
        c.a_msg = _msg("wb-a-msg")
        c.parcoords = gr.Plot(label="parallel coordinates", elem_id="wb-parcoords")
        c.brush = gr.Textbox(elem_id="wb-brush", elem_classes="wb-hidden", show_label=False)
        c.a_caption = gr.Markdown("")
        c.a_trials = gr.Dataframe(label="trials inside the brushed ranges", interactive=False,
                                  wrap=False, max_height=360, elem_id="wb-a-trials")
        with gr.Row():
            with gr.Column():
                c.imp_objective = gr.Dropdown(label="importance for", choices=[])
                c.importance = gr.Plot(label="decision importance", elem_id="wb-importance")
            with gr.Column():
                c.slice_path = gr.Dropdown(label="slice: decision path", choices=[])
                c.slice = gr.Plot(label="slice plot", elem_id="wb-slice")
        with gr.Row():
            c.hypervolume = gr.Plot(label="hypervolume history", elem_id="wb-hv")
            c.timeline = gr.Plot(label="timeline of trials per worker", elem_id="wb-timeline")
        c.rank_quality = gr.Plot(label="surrogate rank quality (held-out Kendall τ / Spearman ρ "
                                       "per refit)", elem_id="wb-rank")
        with gr.Accordion("driver log (tail)", open=False):
            c.log_tail = gr.Markdown("", elem_id="wb-log")


def _render_compare(c: Components) -> None:
    with gr.Tab("Compare studies", id="compare"):
        with gr.Row():
            c.cmp_studies = gr.Dropdown(label="studies", choices=[], multiselect=True, scale=4,
                                        elem_id="wb-cmp-studies")
            c.cmp_metric = gr.Dropdown(label="best so far of", choices=[], scale=1,
                                       allow_custom_value=True)
            c.cmp_x = gr.Dropdown(label="front x", choices=[], scale=1, allow_custom_value=True)
            c.cmp_y = gr.Dropdown(label="front y", choices=[], scale=1, allow_custom_value=True)
            c.cmp_btn = gr.Button("Compare", variant="primary", scale=0, min_width=100)
        c.cmp_msg = _msg("wb-cmp-msg")
        with gr.Row():
            c.cmp_best = gr.Plot(label="best so far", elem_id="wb-cmp-best")
            c.cmp_fronts = gr.Plot(label="Pareto fronts", elem_id="wb-cmp-fronts")


def _render_explorer(c: Components, spaces: list[str]) -> None:
    with gr.Tab("Architecture explorer", id="explorer"):
        with gr.Row():
            c.x_space = gr.Dropdown(label="space", choices=spaces, value=DEFAULTS["space"],
                                    scale=1)
            c.x_shape = gr.Textbox(label="input shape C,H,W", value="1,8,8", scale=1)
            c.x_classes = gr.Number(label="classes", value=10, precision=0, minimum=1, scale=1)
            c.x_seed_name = gr.Dropdown(label="seed architecture", choices=[], scale=2,
                                        elem_id="wb-x-seed-name")
        with gr.Row():
            c.x_text = gr.Textbox(label="architecture (bracket string, tree-space path=choice "
                                  "list, or seed name)", lines=3, scale=4, elem_id="wb-x-text")
            with gr.Column(scale=1):
                c.x_show = gr.Button("Show", variant="primary", elem_id="wb-x-show")
                c.x_sample_seed = gr.Number(label="sample seed", value=0, precision=0,
                                            elem_id="wb-x-seed")
                c.x_sample = gr.Button("Sample a random one")
        c.x_message = gr.Markdown("", elem_id="wb-x-message")
        c.x_last_seed = gr.State(None)  # the seed the last sample was drawn with
        with gr.Row():
            c.x_view = gr.Radio(list(VIEWS), value="dataflow", label="view", scale=1,
                                elem_id="wb-x-view")
            c.x_depth = gr.Slider(0, 8, value=DEFAULT_DEPTH, step=1,
                                  label="depth (0 = everything)", scale=2)
        with gr.Row():
            with gr.Column(scale=1):
                c.x_info = gr.Markdown("")
                with gr.Row():
                    c.x_study = gr.Dropdown(label="evaluate in study", choices=[], scale=2)
                    c.x_enqueue = gr.Button("Evaluate this", scale=1)
                    c.x_start = gr.Button("Start its driver", scale=1, visible=False)
                with gr.Row():
                    c.x_export_fmt = gr.Radio(["json", "py", "onnx", "torchscript", "pt2",
                                               "weights", "svg"], value="py",
                                              label="export (initial weights)")
                    c.x_export = gr.Button("Export", scale=0, min_width=90)
                c.x_file = gr.File(label="download", interactive=False, visible=False)
            with gr.Column(scale=2):
                c.x_diagram = gr.HTML(elem_id="wb-x-diagram")


def render(spaces: list[str], tasks: list[str], searchers: list[str]) -> Components:
    """Lay out the whole app inside the current Blocks; the components by name."""
    c = Components()
    _render_header(c)
    with gr.Tabs(selected="studies") as c.tabs:
        _render_studies(c, spaces, tasks, searchers)
        _render_live(c)
        _render_analysis(c)
        _render_compare(c)
        _render_explorer(c, spaces)
    return c

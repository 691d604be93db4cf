"""Layout of the workbench UI: one ``_render_*`` function per area, no behaviour.

Each function creates its components inside the current ``gr.Blocks`` context and stores them on
the shared :class:`Components` namespace; ``ui.app._wire`` attaches every event afterwards.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from workbench.diagrams import DEFAULT_DEPTH

# Quick, sensible defaults for the first study on an empty database: trains in about a minute
# on a laptop CPU.
DEFAULTS = {"space": "quickstart", "task": "mnist1d", "searcher": "random", "trials": 20,
            "epochs": 3, "steps": 0, "repeats": 1, "workers": 1, "seed": 0,
            "objectives": "acc,params"}

CSS = """
.wb-diagram { border: 1px solid #e5e7eb; border-radius: 6px; padding: 6px; background: #fff; }
.wb-diagram .wb-svg { max-height: 640px; overflow: auto; }
.wb-diagram .wb-svg svg { max-width: none; height: auto; }
.wb-caption { font-weight: 600; margin-bottom: 4px; color: #374151; }
.wb-empty { color: #6b7280; font-style: italic; padding: 24px; text-align: center; }
.wb-pair { display: flex; gap: 8px; align-items: flex-start; }
.wb-pair > .wb-diagram { flex: 1 1 0; min-width: 0; }
#wb-status { min-height: 1.6em; }
#wb-status p { margin: 0; }
"""

# Plot clicks: gradio's gr.Plot has no select event (only change), so a small script binds
# plotly's own click event on the Pareto and best-so-far plots and types the clicked point's
# trial number (its customdata) into the "trial #" box, whose change event does the rest.
CLICK_JS = """
() => {
  const bind = () => {
    for (const id of ["wb-pareto", "wb-best"]) {
      const root = document.getElementById(id);
      if (!root) continue;
      for (const gd of root.querySelectorAll(".js-plotly-plot")) {
        if (gd.__wbBound || typeof gd.on !== "function") continue;
        gd.__wbBound = true;
        gd.on("plotly_click", (ev) => {
          const pt = ev && ev.points && ev.points[0];
          if (!pt || pt.customdata === undefined || pt.customdata === null) return;
          const n = Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata;
          const input = document.querySelector("#wb-trial input, #wb-trial textarea");
          if (!input) return;
          input.value = String(n);
          input.dispatchEvent(new Event("input", {bubbles: true}));
        });
      }
    }
  };
  new MutationObserver(bind).observe(document.body, {childList: true, subtree: true});
  bind();
}
"""


class Components(SimpleNamespace):
    """Every component the wiring needs, by name."""


def _render_header(c: Components) -> None:
    gr.Markdown("# NAS workbench\nSearch spaces, searchers, live circuit diagrams and Pareto "
                "fronts. Searches run in background processes: closing this page does not "
                "stop them.")
    c.status = gr.Markdown("", elem_id="wb-status")


def _render_studies(c: Components, spaces: list[str], tasks: list[str],
                    searchers: list[str]) -> None:
    with gr.Tab("Studies", id="studies"):
        with gr.Accordion("Create a study", open=True) as c.create_box:
            _render_create_form(c, spaces, tasks, searchers)
        with gr.Row():
            c.refresh_studies = gr.Button("Refresh", size="sm", scale=0, min_width=90)
            c.study = gr.Dropdown(label="study", choices=[], scale=3, allow_custom_value=False,
                                  elem_id="wb-study")
            c.extra_trials = gr.Number(label="extra trials on resume", value=0, precision=0,
                                       minimum=0, scale=1)
            c.start_btn = gr.Button("Start / resume", variant="primary", scale=1)
            c.stop_btn = gr.Button("Stop", variant="stop", scale=1)
            c.open_btn = gr.Button("Open live view", scale=1)
        c.studies = gr.Dataframe(label="studies (click a row to select it)", interactive=False,
                                 wrap=True, max_height=420, elem_id="wb-studies")


def _render_create_form(c: Components, spaces: list[str], tasks: list[str],
                        searchers: list[str]) -> None:
    with gr.Row():
        c.f_name = gr.Textbox(label="name (blank: generated)", scale=2)
        c.f_space = gr.Dropdown(label="search space", choices=spaces, value=DEFAULTS["space"],
                                scale=1)
        c.f_task = gr.Dropdown(label="task (name or name:PATH)", choices=tasks,
                               value=DEFAULTS["task"], allow_custom_value=True, scale=1)
        c.f_searcher = gr.Dropdown(label="searcher", choices=searchers,
                                   value=DEFAULTS["searcher"], scale=1)
    with gr.Row():
        c.f_task_options = gr.Textbox(label="task options (key=value, comma-separated; e.g. "
                                      "augment=crop+flip; see docs/tasks.md)", value="")
    with gr.Row():
        c.f_objectives = gr.Textbox(label="objectives (acc, params, flops, latency or "
                                    "metric:max|min)", value=DEFAULTS["objectives"], scale=2)
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
            c.f_evaluator = gr.Textbox(label="custom evaluator module:function (optional, "
                                       "replaces training)", placeholder="tests.evaluators:"
                                       "param_score")
    c.create_btn = gr.Button("Create and start", variant="primary", elem_id="wb-create")


def _render_live(c: Components) -> None:
    with gr.Tab("Live study", id="live"):
        with gr.Row():
            c.live_study = gr.Dropdown(label="study", choices=[], scale=3,
                                       elem_id="wb-live-study")
            c.auto = gr.Checkbox(label="auto-refresh every 2 s", value=True, scale=1)
            c.refresh_live = gr.Button("Refresh now", size="sm", scale=0, min_width=110)
            c.live_start = gr.Button("Start / resume", scale=0, min_width=130)
            c.live_stop = gr.Button("Stop", variant="stop", scale=0, min_width=80)
        c.progress = gr.Markdown("choose a study", elem_id="wb-progress")
        c.timer = gr.Timer(2.0, active=True)
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    c.x_metric = gr.Dropdown(label="x axis", choices=[], scale=1)
                    c.y_metric = gr.Dropdown(label="y axis", choices=[], scale=1)
                c.pareto = gr.Plot(label="Pareto front", elem_id="wb-pareto")
            with gr.Column(scale=2):
                c.best_plot = gr.Plot(label="best so far", elem_id="wb-best")
        with gr.Row():
            c.depth = gr.Slider(0, 8, value=DEFAULT_DEPTH, step=1,
                                label="diagram depth (0 = everything)", scale=2)
            c.view = gr.Radio(["dataflow", "tree"], value="dataflow", label="diagram view",
                              scale=1)
        with gr.Row():
            c.newest_diagram = gr.HTML(elem_id="wb-newest")
            c.best_diagram = gr.HTML(elem_id="wb-best-diagram")
        _render_trial_table(c)
        _render_trial_panel(c)


def _render_trial_table(c: Components) -> None:
    with gr.Row():
        c.sort = gr.Dropdown(label="sort by", choices=["number"], value="number", scale=2)
        c.descending = gr.Checkbox(label="reverse", value=False, scale=1)
        c.states = gr.CheckboxGroup(["complete", "failed", "running", "queued", "pruned"],
                                    label="states (none = all)", scale=3)
        c.page = gr.Number(label="page", value=1, precision=0, minimum=1, scale=1)
        c.prev_page = gr.Button("◀", size="sm", scale=0, min_width=50)
        c.next_page = gr.Button("▶", size="sm", scale=0, min_width=50)
    c.page_info = gr.Markdown("")
    c.trials = gr.Dataframe(label="trials (click a row to select the trial)", interactive=False,
                            wrap=True, max_height=460, elem_id="wb-trials")


def _render_trial_panel(c: Components) -> None:
    gr.Markdown("### Selected trial")
    with gr.Row():
        c.trial = gr.Textbox(label="trial #", max_lines=1, elem_id="wb-trial", scale=1,
                             placeholder="click a point or a row, or type a number")
        c.curve_numbers = gr.Textbox(label="learning curves of trials (e.g. 3, 7, 12; blank: "
                                     "selected + best)", scale=2)
        c.curve_metric = gr.Dropdown(["val_accuracy", "val_loss", "train_loss"],
                                     value="val_accuracy", label="curve metric",
                                     allow_custom_value=True, scale=1)
    with gr.Row():
        with gr.Column(scale=1):
            c.trial_info = gr.Markdown("select a trial: click a point or a table row, or type "
                                       "its number", elem_id="wb-trial-info")
            c.curves = gr.Plot(label="learning curves", elem_id="wb-curves")
        with gr.Column(scale=1):
            c.trial_diagram = gr.HTML(elem_id="wb-trial-diagram")
    with gr.Accordion("Lineage (evolved candidates)", open=False):
        c.lineage_text = gr.Markdown("")
        c.lineage_html = gr.HTML()
    with gr.Row():
        c.export_fmt = gr.Radio(["json", "py", "onnx", "torchscript", "pt2", "weights", "svg"],
                                value="json", label="export format", scale=3)
        c.export_btn = gr.Button("Export trial", scale=1, elem_id="wb-export")
        c.to_explorer = gr.Button("Open in explorer", scale=1)
    c.export_file = gr.File(label="download", interactive=False, elem_id="wb-export-file",
                            visible=False)


def _render_explorer(c: Components, spaces: list[str]) -> None:
    with gr.Tab("Architecture explorer", id="explorer"):
        with gr.Row():
            c.x_space = gr.Dropdown(label="space", choices=spaces, value=DEFAULTS["space"],
                                    scale=1)
            c.x_shape = gr.Textbox(label="input shape C,H,W", value="1,8,8", scale=1)
            c.x_classes = gr.Number(label="classes", value=10, precision=0, minimum=1, scale=1)
            c.x_seed_name = gr.Dropdown(label="seed architecture", choices=[], scale=2)
        with gr.Row():
            c.x_text = gr.Textbox(label="architecture (bracket string, tree-space path=choice "
                                  "list, or seed name)", lines=3, scale=4, elem_id="wb-x-text")
            with gr.Column(scale=1):
                c.x_show = gr.Button("Show", variant="primary", elem_id="wb-x-show")
                c.x_sample_seed = gr.Number(label="sample seed", value=0, precision=0)
                c.x_sample = gr.Button("Sample a random one")
        c.x_message = gr.Markdown("", elem_id="wb-x-message")
        with gr.Row():
            c.x_view = gr.Radio(["dataflow", "tree"], value="dataflow", label="view", scale=1)
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
        _render_explorer(c, spaces)
    return c

"""``build_app(storage)``: the Gradio app factory and its one event-wiring function.

Layout lives in :mod:`ui.layout`, view logic in :mod:`ui.views` / :mod:`ui.arch_views`, search
control in :mod:`ui.control`; this module only connects components to those functions. Every
handler is guarded: a user error (bad bracket string, unknown space, bad option, unreachable
database) becomes one line in the status bar, never a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network at run time

import gradio as gr  # noqa: E402  (after the environment is set)

from ui import arch_views as av  # noqa: E402
from ui import control, views  # noqa: E402
from ui.layout import CLICK_JS, CSS, DEFAULTS, Components, render  # noqa: E402

log = logging.getLogger(__name__)

# System fonts only: the default theme would fetch Google fonts from the internet.
_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


class WorkbenchApp(gr.Blocks):
    """The app's Blocks; :meth:`launch` defaults to an offline theme and our CSS (gradio 6 takes
    theme and css at launch, not at construction)."""

    def launch(self, *args: Any, **kwargs: Any):  # noqa: D102 - as gr.Blocks.launch
        kwargs.setdefault("theme", gr.themes.Default(font=_FONTS, font_mono=_MONO))
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("share", False)
        kwargs.setdefault("show_error", False)
        return super().launch(*args, **kwargs)


def build_app(storage) -> WorkbenchApp:
    """The workbench UI over ``storage`` (a :class:`storage.Storage`)."""
    from workbench.spaces import list_spaces
    from workbench.tasks import list_tasks

    spaces = [e.name for e in list_spaces()]
    tasks = [t["name"] + (":PATH" if t["needs_path"] else "") for t in list_tasks()]
    searchers = list(control.searcher_classes())
    with WorkbenchApp(title="NAS workbench", analytics_enabled=False) as app:
        c = render(spaces, tasks, searchers)
        c.sig = gr.State(None)
        c.export_dir = tempfile.mkdtemp(prefix="workbench-ui-")
        _wire(app, c, storage)
    return app


def _guard(fn: Callable[..., tuple], n_out: int) -> Callable[..., tuple]:
    """Run ``fn``; on an error leave every output but the last (the status line) unchanged and
    put the error's one-line explanation there."""

    @functools.wraps(fn)
    def run(*args: Any) -> tuple:
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            log.debug("handler %s failed", fn.__name__, exc_info=True)
            return (*[gr.skip()] * (n_out - 1), f"⚠ {av.explain(exc)}")
        return out if isinstance(out, tuple) else (out,)

    return run


def _on(event, fn: Callable[..., tuple], inputs: list, outputs: list, **kw: Any):
    """Attach a guarded handler; the status line is always its last output."""
    return event(_guard(fn, len(outputs)), inputs=inputs, outputs=outputs, **kw)


def _study_choices(storage, current: str | None) -> tuple[Any, ...]:
    names = [s["name"] for s in reversed(storage.study_summaries())]
    value = current if current in names else (names[0] if names else None)
    return tuple(gr.Dropdown(choices=names, value=value) for _ in range(3))


def _wire(app: gr.Blocks, c: Components, storage) -> None:  # noqa: C901 - one place for events
    """Connect every component to the view and control functions (the only event wiring)."""
    study_dds = [c.study, c.live_study, c.x_study]

    # -- studies page --------------------------------------------------------------------------
    def on_load(current):
        table = views.studies_table(storage)
        summary, rows = searcher_form(DEFAULTS["searcher"])
        seeds = seed_choices(DEFAULTS["space"])
        return (table, *_study_choices(storage, current), summary, rows, seeds,
                gr.Dropdown(choices=list(av.space_for(DEFAULTS["space"], (1, 8, 8), 10)
                                         .seeds())),
                gr.Accordion(open=table.empty), _welcome(table.empty))

    def searcher_form(name):
        cls = control.searcher_classes().get(name)
        if cls is None:
            return "", []
        mo = "multi-objective" if cls.multi_objective else "single objective only"
        rows = control.option_rows(name)
        return f"**{name}**: {cls.summary} ({mo}{'' if rows else '; no options'})", rows

    def seed_choices(space):
        from workbench.spaces import list_spaces

        entry = {e.name: e for e in list_spaces()}.get(space)
        shape = entry.example_input if entry else (1, 8, 8)
        names = list(av.space_for(space, shape, 10).seeds()) if entry else []
        return gr.CheckboxGroup(choices=names, value=[])

    _on(app.load, on_load, [c.study],
        [c.studies, *study_dds, c.f_summary, c.f_options, c.f_seeds, c.x_seed_name,
         c.create_box, c.status])
    _on(c.f_searcher.change, lambda s: (*searcher_form(s), ""), [c.f_searcher],
        [c.f_summary, c.f_options, c.status])
    _on(c.f_space.change, lambda s: (seed_choices(s), ""), [c.f_space], [c.f_seeds, c.status])

    def on_create(name, space, task, searcher, options, seeds, objectives, trials, epochs,
                  workers, seed, evaluator, keep, steps, repeats, task_options):
        rows = options.values.tolist() if hasattr(options, "values") else options
        created = control.create(storage, name=name, space=space, task=task, searcher=searcher,
                                 option_table=rows, seeds=seeds, objectives=objectives,
                                 trials=trials, epochs=epochs, workers=workers, seed=seed,
                                 evaluator=evaluator, keep_weights=keep, steps=steps,
                                 repeats=repeats, task_options=task_options)
        message = control.start(storage, created)
        return (views.studies_table(storage), *_study_choices(storage, created),
                gr.Tabs(selected="live"), message)

    _on(c.create_btn.click, on_create,
        [c.f_name, c.f_space, c.f_task, c.f_searcher, c.f_options, c.f_seeds, c.f_objectives,
         c.f_trials, c.f_epochs, c.f_workers, c.f_seed, c.f_evaluator, c.f_keep, c.f_steps,
         c.f_repeats, c.f_task_options],
        [c.studies, *study_dds, c.tabs, c.status])

    def refresh_studies(current):
        return (views.studies_table(storage), *_study_choices(storage, current), "")

    _on(c.refresh_studies.click, refresh_studies, [c.study], [c.studies, *study_dds, c.status])
    def select_study(evt: gr.SelectData):
        return evt.row_value[0], ""

    c.studies.select(_guard(select_study, 2), None, [c.study, c.status])

    def start(name, extra):
        _need(name)
        return views.studies_table(storage), control.resume(storage, name, extra or 0)

    def stop(name):
        _need(name)
        return views.studies_table(storage), control.stop(storage, name)

    _on(c.start_btn.click, start, [c.study, c.extra_trials], [c.studies, c.status])
    _on(c.stop_btn.click, stop, [c.study], [c.studies, c.status])
    _on(c.live_start.click, lambda n: start(n, 0), [c.live_study], [c.studies, c.status])
    _on(c.live_stop.click, stop, [c.live_study], [c.studies, c.status])
    _on(c.open_btn.click, lambda n: (n, gr.Tabs(selected="live"), ""), [c.study],
        [c.live_study, c.tabs, c.status])

    # -- live view -----------------------------------------------------------------------------
    live_in = [c.live_study, c.x_metric, c.y_metric, c.depth, c.view, c.sort, c.descending,
               c.states, c.page, c.trial]
    live_out = [c.progress, c.x_metric, c.y_metric, c.pareto, c.best_plot, c.newest_diagram,
                c.best_diagram, c.sort, c.trials, c.page_info, c.sig, c.status]

    def live(name, x, y, depth, view, sort, desc, states, page, selected, sig=None):
        if not name:  # leave the status line alone: the page's load fills both dropdowns and
            # this change event can land after the welcome message, which it must not erase
            return ("choose or create a study", *[gr.skip()] * (len(live_out) - 1))
        rec = storage.get_study(name)
        trials = views.complete_trials(storage, name, sig)
        metrics = views.metric_names(trials, rec.objectives)
        objs = [o["name"] for o in rec.objectives]
        y = y if y in metrics else objs[0]
        x = x if x in metrics and x != y else next(
            (m for m in [*objs[1:], "params", *metrics] if m != y and m in metrics), y)
        fig, _ = views.pareto_figure(trials, rec.objectives, x, y, selected=_int(selected))
        newest, best = views.newest_and_best(storage, name)
        sorts = [*objs, *[m for m in metrics if m not in objs], *views.SORTS]
        table, caption, _ = views.trials_table(storage, name, page=page, sort=sort or "number",
                                               descending=desc, states=states)
        return (views.progress_text(storage, name) + f"  \n_updated {views.stamp()}_",
                gr.Dropdown(choices=metrics, value=x), gr.Dropdown(choices=metrics, value=y),
                fig, views.best_so_far_figure(trials, rec.objectives),
                _trial_diagram(name, newest, "newest", view, depth),
                _trial_diagram(name, best, "best", view, depth),
                gr.Dropdown(choices=sorts, value=sort if sort in sorts else "number"),
                table, caption, views.signature(storage, name) + (_live_state(name),), "")

    def _live_state(name):
        rec = storage.get_study(name)
        return control.study_state(rec.status, rec.config, name)

    def _trial_diagram(name, number, what, view, depth):
        if number is None:
            return av.diagram_html(None, caption=f"no {what} trial yet")
        arch, t = av.trial_arch(storage, name, number)
        return av.diagram_html(arch, caption=f"{what}: trial #{number} ({t.state.value})",
                               view=view, depth=av.depth_value(depth))

    def tick(auto, old_sig, *args):
        name = args[0]
        if not auto or not name:
            return (*[gr.skip()] * len(live_out),)
        sig = views.signature(storage, name) + (_live_state(name),)
        if sig == old_sig:  # nothing changed: send nothing, render nothing
            return (*[gr.skip()] * len(live_out),)
        return live(*args, sig=sig[:-1])

    _on(c.live_study.change, live, live_in, live_out)
    _on(c.refresh_live.click, live, live_in, live_out)
    _on(c.timer.tick, tick, [c.auto, c.sig, *live_in], live_out)
    c.auto.change(lambda a: gr.Timer(active=bool(a)), [c.auto], [c.timer])
    for comp in (c.depth, c.view):
        _on(comp.change, live, live_in, live_out)

    def pareto_only(name, x, y, selected):
        if not name:
            return gr.skip(), ""
        rec = storage.get_study(name)
        trials = views.complete_trials(storage, name)
        return views.pareto_figure(trials, rec.objectives, x, y, selected=_int(selected))[0], ""

    for comp in (c.x_metric, c.y_metric):
        _on(comp.input, pareto_only, [c.live_study, c.x_metric, c.y_metric, c.trial],
            [c.pareto, c.status])

    def table(name, sort, desc, states, page):
        if not name:
            return gr.skip(), gr.skip(), gr.skip(), ""
        df, caption, pages = views.trials_table(storage, name, page=page, sort=sort or "number",
                                                descending=desc, states=states)
        return df, caption, min(max(1, int(page or 1)), pages), ""

    table_in = [c.live_study, c.sort, c.descending, c.states, c.page]
    table_out = [c.trials, c.page_info, c.page, c.status]
    for comp in (c.sort, c.descending, c.states):
        _on(comp.input, table, table_in, table_out)
    _on(c.page.submit, table, table_in, table_out)

    def turn(delta):
        def go(name, sort, desc, states, page):
            return table(name, sort, desc, states, max(1, int(page or 1) + delta))
        return go

    _on(c.prev_page.click, turn(-1), table_in, table_out)
    _on(c.next_page.click, turn(+1), table_in, table_out)

    def select_trial(evt: gr.SelectData):
        return str(int(evt.row_value[0])), ""

    c.trials.select(_guard(select_trial, 2), None, [c.trial, c.status])

    # -- selected trial ------------------------------------------------------------------------
    trial_out = [c.trial_info, c.trial_diagram, c.curves, c.lineage_text, c.lineage_html,
                 c.pareto, c.status]

    def show_trial(name, number, view, depth, curve_text, curve_metric, x, y):
        n = _int(number)
        if not name or n is None:
            return (*[gr.skip()] * (len(trial_out) - 1), "")
        arch, t = av.trial_arch(storage, name, n)
        rec = storage.get_study(name)
        head = f"**trial #{t.number}** · {t.state.value}"
        if t.error:
            head += f" · failed: {t.error}"
        if t.parent_numbers:
            head += f" · parents {', '.join('#' + str(p) for p in t.parent_numbers)}"
        arts = storage.list_artifacts(name, t.number)
        if arts:
            head += f" · artifacts: {', '.join(arts)}"
        info = head + "\n\n" + av.summary_markdown(arch, t.metrics)
        d = av.depth_value(depth)
        diagram = av.diagram_html(arch, caption=f"trial #{t.number}", view=view, depth=d)
        _, best = views.newest_and_best(storage, name)
        numbers = views.parse_numbers(curve_text) or [n, *([best] if best is not None else [])]
        lin_text, lin_html = av.lineage_view(storage, name, n, view=view, depth=d)
        trials = views.complete_trials(storage, name)
        fig = views.pareto_figure(trials, rec.objectives, x, y, selected=n)[0] if x and y \
            else gr.skip()
        return (info, diagram, views.curves_figure(storage, name, numbers, curve_metric),
                lin_text, lin_html, fig, "")

    trial_in = [c.live_study, c.trial, c.view, c.depth, c.curve_numbers, c.curve_metric,
                c.x_metric, c.y_metric]
    _on(c.trial.change, show_trial, trial_in, trial_out)

    def curves_only(name, number, curve_text, metric):
        numbers = views.parse_numbers(curve_text) or ([_int(number)] if _int(number) is not None
                                                      else [])
        return views.curves_figure(storage, name, numbers, metric), ""

    for ev in (c.curve_numbers.submit, c.curve_metric.change):
        _on(ev, curves_only, [c.live_study, c.trial, c.curve_numbers, c.curve_metric],
            [c.curves, c.status])

    def export_trial(name, number, fmt):
        n = _int(number)
        if not name or n is None:
            raise _user("export: expected a selected trial, found none")
        path = av.export_trial(storage, name, n, fmt, c.export_dir)
        return (gr.File(value=str(path), visible=True),
                f"exported trial #{n} of {name} as {fmt}: {path.name}")

    _on(c.export_btn.click, export_trial, [c.live_study, c.trial, c.export_fmt],
        [c.export_file, c.status])

    def to_explorer(name, number):
        arch, _ = av.trial_arch(storage, name, _int(number))
        shape = ",".join(map(str, arch.input_shape))
        return (arch.space, shape, arch.num_classes, arch.text, gr.Tabs(selected="explorer"),
                "")

    _on(c.to_explorer.click, to_explorer, [c.live_study, c.trial],
        [c.x_space, c.x_shape, c.x_classes, c.x_text, c.tabs, c.status])

    # -- explorer ------------------------------------------------------------------------------
    x_in = [c.x_space, c.x_shape, c.x_classes, c.x_text, c.x_view, c.x_depth]
    x_out = [c.x_message, c.x_info, c.x_diagram, c.status]

    def show(space, shape, classes, text, view, depth):
        arch, message = av.explore(space, shape, classes, text)
        if arch is None:
            return message, "", av.diagram_html(None, caption="nothing to draw"), ""
        return (message, av.summary_markdown(arch),
                av.diagram_html(arch, caption=f"{arch.space} {arch.hash}", view=view,
                                depth=av.depth_value(depth)), "")

    for ev in (c.x_show.click, c.x_text.submit, c.x_view.change, c.x_depth.release):
        _on(ev, show, x_in, x_out)

    def space_changed(space):
        from workbench.spaces import list_spaces

        entry = {e.name: e for e in list_spaces()}[space]
        shape = ",".join(map(str, entry.example_input))
        seeds = list(av.space_for(space, entry.example_input, 10).seeds())
        return shape, gr.Dropdown(choices=seeds, value=None), ""

    _on(c.x_space.input, space_changed, [c.x_space], [c.x_shape, c.x_seed_name, c.status])

    def seed_chosen(space, shape, classes, seed_name, view, depth):
        if not seed_name:
            return (gr.skip(), *[gr.skip()] * 3, "")
        return (seed_name, *show(space, shape, classes, seed_name, view, depth))

    _on(c.x_seed_name.input, seed_chosen,
        [c.x_space, c.x_shape, c.x_classes, c.x_seed_name, c.x_view, c.x_depth],
        [c.x_text, *x_out])

    def sample(space, shape, classes, seed, view, depth):
        arch = av.sample(space, shape, classes, seed)[0]
        return (arch.text, int(seed or 0) + 1, *show(space, shape, classes, arch.text, view,
                                                        depth))

    _on(c.x_sample.click, sample,
        [c.x_space, c.x_shape, c.x_classes, c.x_sample_seed, c.x_view, c.x_depth],
        [c.x_text, c.x_sample_seed, *x_out])

    def enqueue(name, text):
        from workbench.study import enqueue as queue_arch

        _need(name)
        arch = av.study_space(storage, name).resolve((text or "").strip())
        number = queue_arch(storage, name, arch)
        rec = storage.get_study(name)
        running = control.driver_alive(rec.config, name) or rec.status in control.ACTIVE
        note = "" if running else "; its driver is not running: start it to evaluate"
        return gr.Button(visible=not running), f"queued as trial #{number} in {name}{note}"

    _on(c.x_enqueue.click, enqueue, [c.x_study, c.x_text], [c.x_start, c.status])
    _on(c.x_start.click, lambda n: (gr.Button(visible=False), control.start(storage, _need(n))),
        [c.x_study], [c.x_start, c.status])

    def export_arch(space, shape, classes, text, fmt):
        arch, message = av.explore(space, shape, classes, text)
        if arch is None:
            raise _user(f"export: {message.lstrip('✗ ').splitlines()[0]}")
        path = av.export_file(arch, fmt, c.export_dir, f"{arch.space}-{arch.hash}")
        return (gr.File(value=str(path), visible=True),
                f"exported {arch.space} {arch.hash} as {fmt}: {path.name}")

    _on(c.x_export.click, export_arch, [c.x_space, c.x_shape, c.x_classes, c.x_text,
                                        c.x_export_fmt], [c.x_file, c.status])
    app.load(None, js=CLICK_JS)


def _welcome(empty: bool) -> str:
    if not empty:
        return ""
    return ("No studies yet. Press **Create and start**: the defaults search a small conv space "
            "on MNIST-1D (20 trials of 3 epochs, about a minute on a laptop).")


def _int(value: Any) -> int | None:
    try:
        return None if value is None or str(value).strip() == "" else int(
            str(value).strip().lstrip("#"))
    except (TypeError, ValueError):
        return None


def _user(message: str) -> Exception:
    from workbench.errors import ConfigError

    return ConfigError(message)


def _need(name: str | None) -> str:
    if not name:
        raise _user("expected a study: choose one in the list, found none")
    return name

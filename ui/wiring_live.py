"""Wiring of the live page, its selected-trial panel, the analysis and compare pages.

The live page's state is explicit: ``c.live`` holds a :class:`ui.panels.LiveState` (the study on
screen and the trial selected in it). A refresh reads one snapshot and renders every view from
it; a timer tick first compares the study's signature (two small queries) and sends nothing
when it has not changed.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from storage.protocol import StudyStorage
from storage.records import TrialState
from ui import analysis, control, figures, panels, views
from ui import arch_views as av
from ui.layout import Components
from ui.snapshot import signature
from ui.wiring import Ctx, need, on, skips


def wire_live(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """Live page: switching study, refreshes (timer and button), the table, start and stop."""
    st = ctx.storage
    opts = [c.x_metric, c.y_metric, c.depth, c.view, c.sort, c.descending, c.states, c.page]
    live_out = [c.progress, c.x_metric, c.y_metric, c.pareto, c.best_plot, c.newest_diagram,
                c.best_diagram, c.sort, c.trials, c.page_info, c.card, c.card_diagram, c.sig]
    trial_out = [c.trial, c.trial_info, c.trial_diagram, c.curves, c.lineage_text,
                 c.lineage_html, c.trial_note, c.export_file]

    def render(snap, sel, x, y, depth, view, sort, desc, states, page, sig):
        v = panels.live_view(snap, sig[-1], sel, x=x, y=y, depth=depth, view=view,
                             sort=sort, descending=desc, states=states, page=page)
        return (v.progress, gr.Dropdown(choices=v.metrics, value=v.x),
                gr.Dropdown(choices=v.metrics, value=v.y), v.pareto, v.best, v.newest_html,
                v.best_html, gr.Dropdown(choices=v.sorts, value=v.sort), v.table, v.caption,
                v.card, v.card_html, sig)

    def refresh(name, sel, *args):
        if not name:
            return ("choose or create a study", *skips(len(live_out) - 1), "")
        sig = signature(st, name) + (control.study_state(*_status(st, name)),)
        snap = ctx.snaps.get(name, sig[:-1])
        return (*render(snap, sel, *args, sig), "")

    def switch(name, sel, *args):
        new = sel.on_study(name)
        out = refresh(name, new, *args)
        if new == sel:  # the same study (e.g. a list refresh): keep the selection
            return (*out[:-1], new, *skips(len(trial_out)), out[-1])
        empty = panels.empty_trial_view(name)
        return (*out[:-1], new, "", empty.info, "", figures.empty_figure(
            "select trials to see their learning curves"), "", "", "",
            gr.File(visible=False), out[-1])

    on(c.live_study.change, switch, [c.live_study, c.live, *opts],
       [*live_out, c.live, *trial_out, c.live_status])
    on(c.refresh_live.click, refresh, [c.live_study, c.live, *opts], [*live_out, c.live_status])

    def tick(auto, old_sig, name, sel, *args):
        if not auto or not name:
            return skips(len(live_out) + 1)
        sig = signature(st, name) + (control.study_state(*_status(st, name)),)
        if sig == old_sig:  # nothing changed: send nothing, render nothing
            return skips(len(live_out) + 1)
        return refresh(name, sel, *args)

    on(c.timer.tick, tick, [c.auto, c.sig, c.live_study, c.live, *opts],
       [*live_out, c.live_status])
    c.auto.change(lambda a: gr.Timer(active=bool(a)), [c.auto], [c.timer])

    def pareto_only(name, sel, x, y):
        if not name:
            return gr.skip(), ""
        snap = ctx.snaps.get(name)
        fig, _ = figures.pareto_figure(
            snap.complete, snap.objectives, x, y, revision=snap.name,
            selected=sel.trial if sel.study == name else None)
        return fig, ""

    for comp in (c.x_metric, c.y_metric):
        on(comp.input, pareto_only, [c.live_study, c.live, c.x_metric, c.y_metric],
           [c.pareto, c.live_status])

    def table(name, sort, desc, states, page):
        if not name:
            return skips(3) + ("",)
        snap = ctx.snaps.get(name)
        df, caption, pages = views.trials_table(snap, page=page, sort=sort or "number",
                                                descending=desc, states=states)
        return df, caption, min(max(1, int(page or 1)), pages), ""

    table_in = [c.live_study, c.sort, c.descending, c.states, c.page]
    table_out = [c.trials, c.page_info, c.page, c.live_status]
    for comp in (c.sort, c.descending, c.states):
        on(comp.input, table, table_in, table_out)
    on(c.page.submit, table, table_in, table_out)
    for button, delta in ((c.prev_page, -1), (c.next_page, +1)):
        on(button.click, lambda n, s, d, f, p, delta=delta: table(n, s, d, f, max(
            1, int(p or 1) + delta)), table_in, table_out)

    def pick(evt: gr.SelectData):
        return str(int(evt.row_value[0]))

    c.trials.select(pick, None, [c.trial])

    def start_stop(fn):
        def run(name):
            return fn(need(name))
        return run

    on(c.live_start.click, start_stop(lambda n: control.start(st, n)), [c.live_study],
       [c.live_msg])
    on(c.live_stop.click, start_stop(lambda n: control.stop(st, n)), [c.live_study],
       [c.live_msg])
    on(c.live_stop_now.click, start_stop(lambda n: control.stop(st, n, now=True)),
       [c.live_study], [c.live_msg])

    def report(name):
        from pathlib import Path

        from workbench.report import study_report

        path = Path(ctx.export_dir) / f"{av.safe_name(need(name))}-report.html"
        path.write_text(study_report(st, name), encoding="utf-8")
        return gr.File(value=str(path), visible=True), f"wrote the report of {name}: {path.name}"

    on(c.report_btn.click, report, [c.live_study], [c.report_file, c.live_msg])


def _status(storage: StudyStorage, name: str) -> tuple[str, Any]:
    """The study's status and its driver lease (what its state in the UI is made of)."""
    return storage.get_study(name).status, storage.lease(name)


def wire_trial(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """The selected trial: choosing it, its curves, diagrams at any depth, export, notes."""
    st = ctx.storage
    out = [c.live, c.trial_info, c.trial_diagram, c.curves, c.curve_msg, c.lineage_text,
           c.lineage_html, c.trial_note, c.pareto, c.card, c.card_diagram, c.trial_msg]

    def select(name, text, sel, view, depth, curve_text, metric, x, y):
        if not name:
            return skips(len(out) - 1) + ("",)
        number = views.parse_trial_number(text)  # a bad number: only this message changes
        snap = ctx.snaps.get(name)
        if number is None:
            empty = panels.empty_trial_view(name)
            return (sel.select(name, None), empty.info, "", gr.skip(), "", "", "", "",
                    gr.skip(), *panels.trial_card(snap, None, view, None), "")
        if snap.trial(number) is None:
            raise av.ConfigError(f"trial #: expected a trial of {name} (0-"
                                 f"{len(snap.trials) - 1}), found {number}")
        new = sel.select(name, number)
        v = panels.trial_view(snap, number, view=view, depth=depth, curve_text=curve_text)
        curves = panels.curves(st.curves(name, v.curve_numbers), v.curve_numbers, metric, name)
        fig = figures.pareto_figure(snap.complete, snap.objectives, x, y,
                                           selected=number, revision=name)[0] \
            if x and y else gr.skip()
        card, card_html = panels.trial_card(snap, number, view, av.depth_value(depth))
        return (new, v.info, v.diagram, curves, v.curve_message, v.lineage_text,
                v.lineage_html, v.note, fig, card, card_html, "")

    on(c.trial.change, select, [c.live_study, c.trial, c.live, c.view, c.depth,
                                c.curve_numbers, c.curve_metric, c.x_metric, c.y_metric], out)

    def curves_only(sel, curve_text, metric):
        if sel.study is None:
            return gr.skip(), ""
        snap = ctx.snaps.get(sel.study)
        best = snap.best.number if snap.best else None
        numbers, message = views.curve_numbers(curve_text, sel.trial, best)
        return panels.curves(st.curves(sel.study, numbers), numbers, metric, sel.study), message

    for ev in (c.curve_numbers.submit, c.curve_metric.change):
        on(ev, curves_only, [c.live, c.curve_numbers, c.curve_metric], [c.curves, c.curve_msg])

    def redraw(name, sel, view, depth):
        if not name:
            return skips(5) + ("",)
        d = panels.diagrams(ctx.snaps.get(name), sel, view, depth)
        keep = sel.study == name and sel.trial is not None
        return (d["newest"], d["best"], *(
            (d["card"], d["trial"], d["lineage"]) if keep else skips(3)), "")

    for ev in (c.depth.change, c.view.change):
        on(ev, redraw, [c.live_study, c.live, c.view, c.depth],
           [c.newest_diagram, c.best_diagram, c.card_diagram, c.trial_diagram, c.lineage_html,
            c.live_status])

    def export(sel, fmt):
        if sel.study is None or sel.trial is None:
            raise av.ConfigError("export: expected a selected trial, found none")
        path = av.export_trial(st, sel.study, sel.trial, fmt, ctx.export_dir)
        return (gr.File(value=str(path), visible=True),
                f"exported {sel.study} · trial #{sel.trial} as {fmt}: {path.name}")

    for button in (c.export_btn, c.card_export):
        on(button.click, export, [c.live, c.export_fmt], [c.export_file, c.trial_msg])

    def to_explorer(sel, view, depth):
        if sel.study is None or sel.trial is None:
            raise av.ConfigError("open in explorer: expected a selected trial, found none")
        arch, _ = av.snapshot_arch(ctx.snaps.get(sel.study), sel.trial)
        shape = ",".join(map(str, arch.input_shape))
        message, info, diagram = av.explorer_view(arch, view, depth)
        seeds = list(av.space_for(arch.space, arch.input_shape, arch.num_classes).seeds())
        return (arch.space, shape, arch.num_classes, arch.text, message, info, diagram,
                gr.Dropdown(choices=seeds, value=None), gr.Tabs(selected="explorer"), "")

    for button in (c.to_explorer, c.card_explorer):
        on(button.click, to_explorer, [c.live, c.x_view, c.x_depth],
           [c.x_space, c.x_shape, c.x_classes, c.x_text, c.x_message, c.x_info, c.x_diagram,
            c.x_seed_name, c.tabs, c.trial_msg])

    def note(sel, text):
        if sel.study is None or sel.trial is None:
            raise av.ConfigError("note: expected a selected trial, found none")
        st.set_note(sel.study, text, trial=sel.trial)
        snap = ctx.snaps.with_notes(sel.study)
        card = views.trial_card(snap, sel.trial) if snap else gr.skip()
        return card, f"saved the note on {sel.study} · trial #{sel.trial}"

    on(c.trial_note_btn.click, note, [c.live, c.trial_note], [c.card, c.trial_msg])


def wire_analysis(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """Analysis page (of the live page's study): drawn when shown and on Refresh."""
    out = [c.a_title, c.parcoords, c.a_trials, c.a_caption, c.imp_objective, c.importance,
           c.slice_path, c.slice, c.hypervolume, c.timeline, c.rank_quality, c.log_tail,
           c.a_msg]

    def render(name, objective, path):
        if not name:
            return ("choose a study on the live page first", *skips(len(out) - 2), "")
        snap = ctx.snaps.get(name)
        objs = snap.objective_names
        objective = objective if objective in objs else (objs[0] if objs else None)
        paths = analysis.varied_paths(snap.complete, limit=40)
        path = path if path in paths else (paths[0] if paths else None)
        df, caption, _ = views.trials_table(snap, page=1, page_size=50, states=[TrialState.COMPLETE.value])
        log = control.read_log_tail(snap.study.config)
        return (f"### analysis of {name}", analysis.parallel_coordinates(snap), df, caption,
                gr.Dropdown(choices=objs, value=objective),
                analysis.importance_figure(snap, objective),
                gr.Dropdown(choices=paths, value=path), analysis.slice_figure(snap, path,
                                                                              objective),
                analysis.hypervolume_figure(snap), analysis.timeline_figure(snap),
                analysis.rank_quality_figure(snap),
                analysis.log_tail(log) if log is not None else
                "no driver log: this study's driver was not started by this UI", "")

    inputs = [c.live_study, c.imp_objective, c.slice_path]
    on(c.analysis_tab.select, render, inputs, out)
    on(c.a_refresh.click, render, inputs, out)

    def importance(name, objective, path):
        snap = ctx.snaps.get(need(name))
        return (analysis.importance_figure(snap, objective),
                analysis.slice_figure(snap, path, objective), "")

    for comp in (c.imp_objective, c.slice_path):
        on(comp.input, importance, inputs, [c.importance, c.slice, c.a_msg])

    def brush(name, text):
        snap = ctx.snaps.get(need(name))
        ranges = json.loads(text) if (text or "").strip() else {}
        numbers = analysis.brushed_numbers(analysis.parcoords_dimensions(snap), ranges)
        df, caption, _ = views.trials_table(snap, page=1, page_size=50, states=[TrialState.COMPLETE.value],
                                            numbers=numbers)
        return df, caption, ""

    # .change: the brush box is filled by a script (a synthetic input event is no user input)
    on(c.brush.change, brush, [c.live_study, c.brush], [c.a_trials, c.a_caption, c.a_msg])


def wire_compare(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """Compare page: best-so-far curves and Pareto fronts of several studies on one plot."""

    def axes(names: list[str] | None):
        if not names:
            return skips(3) + ("",)
        snap = ctx.snaps.get(names[0])
        metrics, x, y = views.choose_axes(snap, None, None)
        return (gr.Dropdown(choices=metrics, value=y), gr.Dropdown(choices=metrics, value=x),
                gr.Dropdown(choices=metrics, value=y), "")

    on(c.cmp_studies.input, axes, [c.cmp_studies], [c.cmp_metric, c.cmp_x, c.cmp_y, c.cmp_msg])

    def compare(names: list[str] | None, metric: str, x: str, y: str) -> tuple[Any, ...]:
        if not names:
            raise av.ConfigError("compare: expected one or more studies, found none")
        snaps = [ctx.snaps.get(n) for n in names]
        return (analysis.compare_best_figure(snaps, metric),
                analysis.compare_fronts_figure(snaps, x, y), "")

    on(c.cmp_btn.click, compare, [c.cmp_studies, c.cmp_metric, c.cmp_x, c.cmp_y],
       [c.cmp_best, c.cmp_fronts, c.cmp_msg])

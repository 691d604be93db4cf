"""Event wiring: one small function per page, connecting components to the pure views.

Handlers read what they need (one snapshot per refresh, see :mod:`ui.snapshot`), call the pure
functions of :mod:`ui.panels`, :mod:`ui.views`, :mod:`ui.figures` and :mod:`ui.analysis`, and
return component updates. Every handler is guarded: an error becomes one line in the message
beside the action that caused it (its last output), never a traceback, and never blocks any
other action.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from storage.protocol import StudyStorage
from storage.records import StudyStatus
from ui import arch_views as av
from ui import control, views
from ui.layout import DEFAULTS, Components
from ui.snapshot import Snapshots

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    """What every handler shares: the storage, the app's snapshots, the export folder."""

    storage: Any
    snaps: Snapshots
    export_dir: str


def guard(fn: Callable[..., Any], n_out: int) -> Callable[..., Any]:
    """Run ``fn``; on an error leave every output but the last (the action's message line)
    unchanged and put the error's one-line explanation there."""

    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            log.debug("handler %s failed", fn.__name__, exc_info=True)
            out = (*[gr.skip()] * (n_out - 1), f"⚠ {av.explain(exc)}")
        out = out if isinstance(out, tuple) else (out,)
        return out[0] if n_out == 1 else out  # gradio wants a bare value for one output

    return run


def on(event, fn: Callable[..., Any], inputs: list, outputs: list, **kw: Any):
    """Attach a guarded handler; the message line is always its last output."""
    return event(guard(fn, len(outputs)), inputs=inputs, outputs=outputs, **kw)


def skips(n: int) -> tuple:
    return tuple(gr.skip() for _ in range(n))


def need(name: str | None) -> str:
    if not name:
        from workbench.errors import ConfigError

        raise ConfigError("expected a study: choose one in the list, found none")
    return name


def study_names(storage: StudyStorage) -> list[str]:
    return [r.name for r in reversed(storage.list_studies())]


def choices(names: list[str], current: str | None, fallback: bool = True):
    value = current if current in names else (names[0] if names and fallback else None)
    return gr.Dropdown(choices=names, value=value)


# -- studies page ------------------------------------------------------------------------------------
def studies_table(storage: StudyStorage):
    summaries, configs, states = control.ui_states(storage)
    notes = storage.study_notes()  # one query for the whole table
    return views.studies_table(summaries, configs, states, notes), states


def wire_studies(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """The studies page: create, start, stop (two kinds), manage, and a self-refreshing table."""
    st = ctx.storage
    dds = [c.study, c.live_study, c.x_study, c.cmp_studies]

    def lists(cur_study, cur_live, cur_x, cur_cmp):
        names = study_names(st)
        cmp = gr.Dropdown(choices=names, value=[n for n in (cur_cmp or []) if n in names])
        return (choices(names, cur_study), choices(names, cur_live), choices(names, cur_x), cmp)

    def table_and_lists(*current):
        table, states = studies_table(st)
        sig = _studies_sig(st, states)
        return (table, *lists(*current), sig)

    def on_load(*current):
        out = table_and_lists(*current)
        summary, rows = searcher_form(DEFAULTS["searcher"])
        empty = out[0].empty
        return (*out, summary, rows, seed_choices(DEFAULTS["space"]),
                gr.Dropdown(choices=seed_names(DEFAULTS["space"])), gr.Accordion(open=empty),
                _welcome(empty))

    listed = [c.studies, *dds, c.studies_sig]
    on(app.load, on_load, dds, [*listed, c.f_summary, c.f_options, c.f_seeds, c.x_seed_name,
                                c.create_box, c.status])

    def tick(old, *current):
        names_before = old[0] if old else None
        table, states = studies_table(st)
        sig = _studies_sig(st, states)
        if sig == old:
            return (*skips(len(listed)), gr.skip())
        dd = lists(*current) if sig[0] != names_before else skips(len(dds))
        return (table, *dd, sig, gr.skip())

    # refreshes itself: a study created by the CLI appears, a running one's counts move
    on(c.studies_timer.tick, tick, [c.studies_sig, *dds], [*listed, c.status])
    on(c.refresh_studies.click, lambda *cur: (*table_and_lists(*cur), ""), dds,
       [*listed, c.studies_msg])
    on(c.f_searcher.change, lambda s: (*searcher_form(s), ""), [c.f_searcher],
       [c.f_summary, c.f_options, c.create_msg])
    on(c.f_space.change, lambda s: (seed_choices(s), ""), [c.f_space], [c.f_seeds, c.create_msg])

    def on_create(name, space, task, task_options, searcher, options, seeds, objectives,
                  trials, epochs, steps, repeats, workers, seed, evaluator, keep, memory,
                  proxies, prefilter, constraints, *current):
        rows = options.values.tolist() if hasattr(options, "values") else options
        created = control.create(st, name=name, space=space, task=task, searcher=searcher,
                                 option_table=rows, seeds=seeds, objectives=objectives,
                                 trials=trials, epochs=epochs, workers=workers, seed=seed,
                                 evaluator=evaluator, keep_weights=keep,
                                 steps=int(steps or 0) or None, repeats=int(repeats or 1),
                                 task_options=task_options or "", memory_limit=memory or "",
                                 proxies=proxies or "", prefilter=prefilter or "",
                                 constraints=constraints or "")
        message = control.start(st, created)
        table, states = studies_table(st)
        names = study_names(st)
        return (table, choices(names, created), choices(names, created), *lists(*current)[2:],
                _studies_sig(st, states), gr.Tabs(selected="live"), "", message, message)

    on(c.create_btn.click, on_create,
       [c.f_name, c.f_space, c.f_task, c.f_task_options, c.f_searcher, c.f_options, c.f_seeds,
        c.f_objectives, c.f_trials, c.f_epochs, c.f_steps, c.f_repeats, c.f_workers, c.f_seed,
        c.f_evaluator, c.f_keep, c.f_memory, c.f_proxies, c.f_prefilter, c.f_constraints, *dds],
       [*listed, c.tabs, c.status, c.live_msg, c.create_msg])
    def pick(evt: gr.SelectData):
        return evt.row_value[0], ""

    c.studies.select(guard(pick, 2), None, [c.study, c.studies_msg])

    def act(fn):  # act first, then compute the table (it shows the action's effect)
        def run(name, *args):
            message = fn(need(name), *args)
            return studies_table(st)[0], message
        return run

    on(c.start_btn.click, act(lambda n, extra: control.resume(st, n, extra or 0)),
       [c.study, c.extra_trials], [c.studies, c.studies_msg])
    on(c.stop_btn.click, act(lambda n: control.stop(st, n)), [c.study],
       [c.studies, c.studies_msg])
    on(c.stop_now_btn.click, act(lambda n: control.stop(st, n, now=True)), [c.study],
       [c.studies, c.studies_msg])
    on(c.open_btn.click, lambda n: (need(n), gr.Tabs(selected="live"), ""), [c.study],
       [c.live_study, c.tabs, c.studies_msg])

    def manage(fn):
        def run(name, new_name, *current):
            message = fn(name, new_name) if name else None
            if message is None:  # nothing chosen or the delete was not confirmed
                return (*skips(len(listed)), "")
            ctx.snaps.forget(name)
            return (*table_and_lists(*current), message)
        return run

    on(c.rename_btn.click, manage(lambda n, new: control.rename(st, n, new)),
       [c.study, c.m_name, *dds], [*listed, c.studies_msg])
    on(c.duplicate_btn.click, manage(lambda n, new: control.duplicate(st, n, new)),
       [c.study, c.m_name, *dds], [*listed, c.studies_msg])
    on(c.delete_btn.click, manage(lambda n, _new: control.delete(st, n)),
       [c.study, c.m_name, *dds], [*listed, c.studies_msg], js=_confirm_js())

    def note(name, text):
        st.set_note(need(name), text)
        ctx.snaps.with_notes(name)
        return studies_table(st)[0], f"saved the note on {name}"

    on(c.study_note_btn.click, note, [c.study, c.study_note], [c.studies, c.studies_msg])
    on(c.study.change, lambda n: (st.notes(n).get(None, "") if n else "", ""), [c.study],
       [c.study_note, c.studies_msg])


def _confirm_js() -> str:
    from ui.layout import CONFIRM_DELETE_JS

    return CONFIRM_DELETE_JS


def _studies_sig(storage: StudyStorage, states: dict[str, str]) -> tuple:
    """Changes when a study appears, goes, or changes; while any runs, on every tick."""
    names = tuple(sorted(states))
    idle = {s.value for s in StudyStatus if not s.active}
    running = any(s not in idle for s in states.values())  # incl. "starting", "driver gone"
    recs = tuple((r.name, r.status, r.updated_at.isoformat()) for r in storage.list_studies())
    return (names, recs, views.stamp() if running else "")


def searcher_form(name: str) -> tuple[str, list]:
    cls = control.searcher_classes().get(name)
    if cls is None:
        return "", []
    mo = "multi-objective" if cls.multi_objective else "single objective only"
    rows = control.option_rows(name)
    return (f"**{name}**: {cls.summary} ({mo}{'' if rows else '; no options'}). "
            f"*Versus random:* {cls.versus_random}.", rows)


def seed_names(space: str) -> list[str]:
    from workbench.spaces import list_spaces

    entry = {e.name: e for e in list_spaces()}.get(space)
    return list(av.space_for(space, entry.example_input, 10).seeds()) if entry else []


def seed_choices(space: str):
    return gr.CheckboxGroup(choices=seed_names(space), value=[])


def _welcome(empty: bool) -> str:
    if not empty:
        return ""
    return ("No studies yet. Press **Create and start**: the defaults search a small conv space "
            "on the digits dataset (20 trials of 3 epochs, about a minute on a laptop).")


# -- explorer ----------------------------------------------------------------------------------------
def wire_explorer(app: gr.Blocks, c: Components, ctx: Ctx) -> None:
    """Explorer: resolve, sample, draw, queue into a study, export."""
    st = ctx.storage
    x_in = [c.x_space, c.x_shape, c.x_classes, c.x_text, c.x_view, c.x_depth]
    x_out = [c.x_info, c.x_diagram, c.x_message]

    def show(space, shape, classes, text, view, depth):
        arch, message = av.explore(space, shape, classes, text)
        if arch is None:
            return "", av.diagram_html(None, caption="nothing to draw"), message
        message, info, diagram = av.explorer_view(arch, view, depth)
        return info, diagram, message

    for ev in (c.x_show.click, c.x_text.submit, c.x_view.change, c.x_depth.release):
        on(ev, show, x_in, x_out)

    def space_changed(space):
        from workbench.spaces import list_spaces

        entry = {e.name: e for e in list_spaces()}[space]
        shape = ",".join(map(str, entry.example_input))
        seeds = list(av.space_for(space, entry.example_input, 10).seeds())
        return shape, gr.Dropdown(choices=seeds, value=None), ""

    on(c.x_space.input, space_changed, [c.x_space], [c.x_shape, c.x_seed_name, c.x_message])

    # the box shows the seed's name at once; drawing it (seconds for a ResNet) comes after, so
    # the box is not left pending (and deaf to typing) while the diagram renders
    c.x_seed_name.input(lambda name: name or gr.skip(), [c.x_seed_name], [c.x_text]).then(
        guard(lambda name, *a: show(*a) if name else skips(3), len(x_out)),
        [c.x_seed_name, *x_in], x_out)
    # the seed dropdown names what the box holds: typing something else clears it
    c.x_text.input(lambda text, seed: gr.skip() if (text or "").strip() == seed else
                   gr.Dropdown(value=None), [c.x_text, c.x_seed_name], [c.x_seed_name])

    def sample(space, shape, classes, seed, last, view, depth):
        seed = int(seed or 0)
        if last is not None and seed == last:  # pressed again: the next seed
            seed += 1
        arch = av.sample(space, shape, classes, seed)[0]
        info, diagram, message = show(space, shape, classes, arch.text, view, depth)
        return (arch.text, seed, seed, gr.Dropdown(value=None), info, diagram,
                f"{message} · sampled with seed {seed}")

    on(c.x_sample.click, sample,
       [c.x_space, c.x_shape, c.x_classes, c.x_sample_seed, c.x_last_seed, c.x_view, c.x_depth],
       [c.x_text, c.x_sample_seed, c.x_last_seed, c.x_seed_name, *x_out])

    def enqueue(name, text):
        from workbench.study import enqueue as queue_arch

        need(name)
        from ui.policy import current

        current().check_arch_text((text or "").strip())
        arch = av.study_space(st, name).resolve((text or "").strip())
        number = queue_arch(st, name, arch)
        rec = st.get_study(name)
        running = control.driver_alive(st.lease(name)) or rec.status in control.ACTIVE
        note = "" if running else "; its driver is not running: start it to evaluate"
        return gr.Button(visible=not running), f"queued as trial #{number} in {name}{note}"

    on(c.x_enqueue.click, enqueue, [c.x_study, c.x_text], [c.x_start, c.x_message])
    on(c.x_start.click, lambda n: (gr.Button(visible=False), control.start(st, need(n))),
       [c.x_study], [c.x_start, c.x_message])

    def export_arch(space, shape, classes, text, fmt):
        arch, message = av.explore(space, shape, classes, text)
        if arch is None:
            from workbench.errors import ConfigError

            raise ConfigError(f"export: {message.lstrip('✗ ').splitlines()[0]}")
        path = av.export_file(arch, fmt, ctx.export_dir, f"{arch.space}-{arch.hash}")
        return (gr.File(value=str(path), visible=True),
                f"exported {arch.space} {arch.hash} as {fmt}: {path.name}")

    on(c.x_export.click, export_arch, [c.x_space, c.x_shape, c.x_classes, c.x_text,
                                       c.x_export_fmt], [c.x_file, c.x_message])

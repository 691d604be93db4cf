"""Pure view functions about architectures: circuit diagrams, the explorer, lineage and exports.

Diagrams are SVG from :mod:`workbench.diagrams`, embedded inline; rendered ones are cached by
(architecture hash, view, depth, highlight), so the live view's refreshes cost nothing when the
newest and best candidates have not changed.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from storage.protocol import StudyStorage
from workbench.architecture import Architecture
from workbench.errors import ConfigError, ParseError, WorkbenchError
from workbench.seeds import derive_seed
from workbench.study import trial_architecture

_SVG_CACHE: OrderedDict[tuple, str] = OrderedDict()
_SPACE_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()
_SVG_CACHE_SIZE = 64
MAX_LINEAGE = 12


# -- spaces and architectures ------------------------------------------------------------------------
def space_for(name: str, input_shape: Sequence[int], num_classes: int,
              options: dict[str, Any] | None = None):
    """A space bound to a shape (cached: building einspace's grammar is not free)."""
    from workbench.spaces import get_space

    key = json.dumps([name, list(input_shape), int(num_classes), options or {}], sort_keys=True)
    with _LOCK:
        if key not in _SPACE_CACHE:
            _SPACE_CACHE[key] = get_space(name, tuple(input_shape), int(num_classes),
                                          **(options or {}))
        return _SPACE_CACHE[key]


def study_space(storage: StudyStorage, name: str):
    """The space of a study, bound to the study's input shape and classes."""
    from workbench.study import StudyConfig

    cfg = StudyConfig.from_dict(storage.get_study(name).config)
    return space_for(cfg.space, *cfg.shape, cfg.space_options)


def trial_arch(storage: StudyStorage, name: str, number: int) -> tuple[Architecture, Any]:
    """A stored trial's architecture, rebuilt by replaying its decisions, and the trial."""
    trial = storage.get_trial(name, int(number), with_curve=False)
    arch = trial_architecture(study_space(storage, name), trial)
    return arch, trial


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,8,8"`` -> (1, 8, 8)."""
    try:
        dims = tuple(int(x) for x in str(text).replace("x", ",").split(",") if x.strip())
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"input shape: expected positive integers like 1,8,8, found {text!r}")
    return dims


def explain(exc: BaseException) -> str:
    """One line for the UI: what was expected, what was found, where (no traceback). CLI flags
    in library messages become the names of the UI's fields (``--objectives`` -> ``objectives``).

    >>> explain(ConfigError("--objectives: expected acc or metric:max, found ''"))
    "objectives: expected acc or metric:max, found ''"
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"(?<![\w-])--([a-z][\w-]*)", r"\1", text)
    if isinstance(exc, (WorkbenchError,)):
        return text
    try:
        from storage.errors import StorageError

        if isinstance(exc, StorageError):
            return text
    except ImportError:  # pragma: no cover - storage always ships with the workbench
        pass
    return f"{type(exc).__name__}: {text}"


def explore(space_name: str, shape_text: str, num_classes: int, text: str,
            ) -> tuple[Architecture | None, str]:
    """Resolve a seed name or bracket string in a space: the architecture (or None) and a
    markdown message; a parse error shows the line with a caret under the column."""
    try:
        space = space_for(space_name, parse_shape(shape_text), int(num_classes or 10))
    except WorkbenchError as exc:
        return None, f"✗ {explain(exc)}"
    text = (text or "").strip()
    if not text:
        return None, "enter a bracket string, choose a seed or press *sample*"
    try:
        from ui.policy import current

        current().check_arch_text(text)
        arch = space.resolve(text)
    except ParseError as exc:
        return None, f"✗ {exc}" + _caret(text, exc)
    except WorkbenchError as exc:
        return None, f"✗ {explain(exc)}"
    return arch, f"✓ valid {arch.space} architecture `{arch.hash}`"


def _caret(text: str, exc: ParseError) -> str:
    if exc.line is None or exc.column is None:  # ParseError sets both or neither
        return ""
    line = text.splitlines()[exc.line - 1] if text.splitlines() else text
    start = max(0, exc.column - 60)
    snippet = line[start:start + 100]
    return f"\n\n```\n{snippet}\n{' ' * (exc.column - 1 - start)}^\n```"


def sample(space_name: str, shape_text: str, num_classes: int, seed: int, n: int = 1,
           ) -> list[Architecture]:
    """``n`` random architectures of a space (seeded, so a seed always shows the same ones)."""
    space = space_for(space_name, parse_shape(shape_text), int(num_classes or 10))
    rng = random.Random(int(seed or 0))
    return [space.sample(rng) for _ in range(max(1, int(n)))]


def summary_markdown(arch: Architecture, metrics: dict[str, Any] | None = None) -> str:
    """Parameters, FLOPs and shapes of an architecture (computed by compiling it, no training)."""
    from ui.views import fmt
    from workbench.metrics import static_metrics

    m = static_metrics(arch)
    rows = [("parameters (backbone / total)", f"{m['params_backbone']:,} / {m['params_total']:,}"),
            ("FLOPs (one sample)", f"{m['flops']:,}"),
            ("input → backbone output → logits",
             f"{_shape(m['input_shape'])} → {_shape(m['output_shape'])} → "
             f"{_shape(m['logits_shape'])}"),
            ("nodes / depth / decisions", f"{m['nodes']} / {m['depth']} / {m['decisions']}"),
            ("space / hash", f"{arch.space} / `{arch.hash}`")]
    for k, v in sorted((metrics or {}).items()):
        if isinstance(v, (int, float)):
            rows.append((k, fmt(v)))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"| measure | value |\n|---|---|\n{table}\n\n<details><summary>architecture text</summary>\n\n" \
           f"```\n{arch.text}\n```\n</details>"


def _shape(dims: Iterable[int]) -> str:
    return "×".join(map(str, dims))


# -- diagrams ------------------------------------------------------------------------------------
def diagram_svg(arch: Architecture, *, view: str = "dataflow", depth: int | None = None,
                highlight: Iterable[str] = (), title: str | None = None) -> str:
    """The rendered SVG (cached), without its XML prologue so it embeds in HTML."""
    from workbench.diagrams import render_svg

    hl = frozenset(highlight)
    key = (arch.hash, view, depth, tuple(sorted(hl)), title)
    with _LOCK:
        if key in _SVG_CACHE:
            _SVG_CACHE.move_to_end(key)
            return _SVG_CACHE[key]
    svg = render_svg(arch, view=view, depth=depth, highlight=hl, title=title)
    svg = svg[svg.find("<svg"):]  # drop <?xml ...?> and the DOCTYPE
    with _LOCK:
        _SVG_CACHE[key] = svg
        while len(_SVG_CACHE) > _SVG_CACHE_SIZE:
            _SVG_CACHE.popitem(last=False)
    return svg


def diagram_html(arch: Architecture | None, *, caption: str = "", view: str = "dataflow",
                 depth: int | None = None, highlight: Iterable[str] = (),
                 title: str | None = None) -> str:
    """A captioned, scrollable diagram for ``gr.HTML``; a diagram error becomes its message."""
    if arch is None:
        return _note(caption or "no architecture yet")
    try:
        svg = diagram_svg(arch, view=view, depth=depth, highlight=highlight, title=title)
    except WorkbenchError as exc:
        return _note(f"{caption}: cannot draw the diagram: {explain(exc)}")
    cap = f'<div class="wb-caption">{html.escape(caption)}</div>' if caption else ""
    # view and depth on the element: what it was drawn with, for scripts and the browser tests
    return (f'<div class="wb-diagram" data-view="{html.escape(view)}" data-depth="{depth or 0}">'
            f'{cap}<div class="wb-svg">{svg}</div></div>')


def _note(text: str) -> str:
    return f'<div class="wb-diagram wb-empty">{html.escape(text)}</div>'


def depth_value(depth: Any) -> int | None:
    """The depth control: 0 means everything (no collapsing)."""
    d = int(depth or 0)
    return None if d <= 0 else d


# -- lineage -------------------------------------------------------------------------------------
def snapshot_space(snap):
    """The space of a snapshot's study, bound to its input shape and classes."""
    from workbench.study import StudyConfig

    cfg = StudyConfig.from_dict(snap.study.config)
    return space_for(cfg.space, *cfg.shape, cfg.space_options)


def snapshot_arch(snap, number: int) -> tuple[Architecture, Any]:
    """A trial's architecture rebuilt from the snapshot (no database read) and the trial."""
    trial = snap.trial(int(number))
    if trial is None:
        raise ConfigError(f"trial #: expected a trial of {snap.name} (0-{len(snap.trials) - 1}), "
                          f"found {number}")
    arch = trial_architecture(snapshot_space(snap), trial)
    return arch, trial


def lineage(snap, number: int, limit: int = MAX_LINEAGE) -> list[Any]:
    """The trial and its ancestors through first parents, child first (at most ``limit``)."""
    chain: list[Any] = []
    seen: set[int] = set()
    current: int | None = int(number)
    while current is not None and current not in seen and len(chain) < limit:
        seen.add(current)
        t = snap.trial(current)
        if t is None:
            break
        chain.append(t)
        current = t.parent_numbers[0] if t.parent_numbers else None
    return chain


def change_words(parent: Architecture, child: Architecture) -> list[str]:
    """What a mutation changed, in words: ``root/merge: dot_product → cat(3)`` per path."""
    from workbench.architecture import changed_paths

    before = {d.path: d.choice for d in parent.decisions}
    after = {d.path: d.choice for d in child.decisions}
    out = []
    for p in sorted(changed_paths(parent, child)):
        # the topmost decision at or under the changed node names the change
        at = next((q for q in [*before, *after] if q == p or q.startswith(p + "/")), None)
        if at is not None:
            out.append(f"{at}: {_choice(before.get(at))} → {_choice(after.get(at))}")
    return out or ["nothing (same decisions)"]


def _choice(c: Any) -> str:
    return "—" if c is None else c if isinstance(c, str) else json.dumps(c)


def lineage_view(snap, number: int, *, view: str = "dataflow",
                 depth: int | None = None) -> tuple[str, str]:
    """Markdown of the ancestry chain and of the change in words, and HTML of parent → child
    with the mutated part in red (the diagrams scroll to the first change)."""
    from ui.views import fmt
    from workbench.architecture import changed_paths

    chain = lineage(snap, number)
    if not chain:
        return f"{snap.name} has no trial #{number}", _note("nothing to compare")
    child = chain[0]
    if not child.parent_numbers:
        return (f"trial #{child.number} has no parent (sampled or seeded, not evolved)",
                _note("no parent to compare with"))
    obj = snap.objective_names[0]
    steps = " → ".join(f"#{t.number} ({fmt(t.metrics.get(obj))})" for t in reversed(chain))
    extra = (f"; also crossed with #{', #'.join(map(str, child.parent_numbers[1:]))}"
             if len(child.parent_numbers) > 1 else "")
    parent_arch, _ = snapshot_arch(snap, child.parent_numbers[0])
    child_arch, _ = snapshot_arch(snap, child.number)
    words = change_words(parent_arch, child_arch)
    text = (f"lineage by first parent, oldest first, {obj} in brackets: {steps}{extra}  \n"
            f"#{child.parent_numbers[0]} → #{child.number} changed " + "; ".join(
                f"`{w}`" for w in words))
    changed = changed_paths(parent_arch, child_arch)
    html_out = (
        '<div class="wb-pair wb-lineage">'
        + diagram_html(parent_arch, caption=f"parent #{child.parent_numbers[0]}", view=view,
                       depth=depth, highlight=changed)
        + diagram_html(child_arch, caption=f"child #{child.number} (changed: "
                       f"{', '.join(sorted(changed)) or 'nothing'})", view=view, depth=depth,
                       highlight=changed)
        + "</div>")
    return text, html_out


# -- exports -------------------------------------------------------------------------------------
def export_formats() -> tuple[str, ...]:
    from workbench.export import FORMAT_TABLE

    return tuple(FORMAT_TABLE)


def export_file(arch: Architecture, fmt: str, out_dir: str | Path, stem: str, *,
                seed: int = 0, weights: bytes | None = None,
                metrics: dict[str, Any] | None = None) -> Path:
    """Write ``arch`` as ``fmt`` into ``out_dir``; trained ``weights`` (safetensors) when given."""
    from workbench.export import export, get_format, weights_from_bytes

    suffix = get_format(fmt).suffix
    state = weights_from_bytes(weights, f"{stem} weights") if weights else None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    path = Path(out_dir) / f"{safe}{suffix}"
    return export(arch, fmt, path, seed=seed, state_dict=state, metrics=metrics)


def export_trial(storage: StudyStorage, name: str, number: int, fmt: str, out_dir: str | Path) -> Path:
    """Export a stored trial; its trained weights come from the ``weights.safetensors``
    artifact when it has one, else the weights are initialised from the trial's seed."""
    arch, trial = trial_arch(storage, name, number)
    weights = None
    if fmt != "json" and fmt != "svg":
        weights = storage.get_artifact(name, trial.number, "weights.safetensors")
    seed = derive_seed(storage.get_study(name).seed, "trial", trial.number)  # the trial's init
    return export_file(arch, fmt, out_dir, f"{name}-trial{trial.number}", seed=seed,
                       weights=weights, metrics=trial.metrics)


def safe_name(stem: str) -> str:
    """A file-name-safe form of a study or architecture name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def explorer_view(arch: Architecture, view: str, depth: Any) -> tuple[str, str, str]:
    """The explorer's message, summary and diagram for an architecture."""
    return (f"✓ valid {arch.space} architecture `{arch.hash}`", summary_markdown(arch),
            diagram_html(arch, caption=f"{arch.space} {arch.hash}", view=view,
                         depth=depth_value(depth)))

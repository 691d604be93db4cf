"""Search spaces: the protocol every space implements, grammar spaces, and the registry by name.

Every space derives :class:`~workbench.architecture.Architecture` values through a policy, so
sampling, replay, parsing, mutation and crossover are all just policies over one ``derive``:

>>> import random
>>> space = get_space("einspace", input_shape=(3, 16, 16), num_classes=10)
>>> arch = space.sample(random.Random(0))
>>> space.replay(arch.decisions) == arch and space.parse(arch.text) == arch
True
>>> space.mutate(arch, random.Random(1)).text != arch.text
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.architecture import Architecture, Choice, Decision, DecisionPoint, Node, Policy
from workbench.errors import (
    ConfigError,
    DerivationFailed,
    InvalidArchitecture,
    NotFound,
    ParseError,
)
from workbench.plugins import import_object


class _NoAlternative(Exception):
    """Internal: the mutated decision point has a single option."""


class Space:
    """Base class of every search space.

    Subclasses implement :meth:`_derive` (tree, decisions, text) and, where they have a string
    syntax of their own, :meth:`parse`.
    """

    name: str = ""
    version: str = "1"
    kind: str = ""  # "grammar" | "tree"
    description: str = ""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)

    # -- to implement --------------------------------------------------------------------------
    def _derive(self, policy: Policy | None, rng: random.Random,
                backtrack: bool) -> tuple[Node, tuple[Decision, ...], str]:
        raise NotImplementedError

    def seeds(self) -> dict[str, str]:
        """Named seed architectures (name -> canonical text)."""
        return {}

    def size(self) -> int | None:
        """Number of distinct complete decision sequences, or None where infinite/unknown."""
        return None

    # -- derived operations --------------------------------------------------------------------
    def _make(self, tree: Node, decisions: tuple[Decision, ...], text: str) -> Architecture:
        return Architecture(self.name, self.version, self.input_shape, self.num_classes,
                            decisions, tree, text)

    def derive(self, policy: Policy | None = None, rng: random.Random | None = None,
               *, backtrack: bool = True) -> Architecture:
        """Derive one architecture asking ``policy`` (None: sample from the space's probabilities)."""
        tree, decisions, text = self._derive(policy, rng or random.Random(0), backtrack)
        return self._make(tree, decisions, text)

    def sample(self, rng: random.Random, *, attempts: int = 50) -> Architecture:
        """A random architecture from the space's own probabilities (restarts on rare dead ends)."""
        last: Exception | None = None
        for _ in range(attempts):
            try:
                return self.derive(None, rng)
            except DerivationFailed as exc:
                last = exc
        raise DerivationFailed(f"space {self.name!r}: no valid sample in {attempts} attempts ({last})")

    def replay(self, decisions: Iterable[Decision | Sequence[Any]]) -> Architecture:
        """Re-derive exactly these decisions (:class:`Decision` values or stored
        ``[path, choice]`` pairs); any decision that is not valid is an error."""
        table = {}
        for d in decisions:
            path, choice = (d.path, d.choice) if isinstance(d, Decision) else d
            table[str(path)] = choice

        def policy(point: DecisionPoint) -> Choice:
            if point.path not in table:
                raise InvalidArchitecture(f"at {point.path}: expected a decision, found none")
            return _match(point, table[point.path])

        arch = self.derive(policy, random.Random(0), backtrack=False)
        extra = set(table) - {d.path for d in arch.decisions}
        if extra:
            raise InvalidArchitecture(
                f"expected only decisions the derivation asks, found extra paths: {sorted(extra)[:3]}")
        return arch

    def parse(self, text: str) -> Architecture:
        """Parse the space's string form. Tree spaces accept ``path=choice; ...`` lists."""
        table: dict[str, Choice] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            if "=" not in part:
                raise ParseError(f"expected 'path=choice' in {self.name} architecture text, "
                                 f"found {part[:40]!r}")
            path, _, raw = part.partition("=")
            try:
                table[path.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                table[path.strip()] = raw.strip()
        return self.replay(Decision(p, c) for p, c in table.items())

    def seed(self, name: str) -> Architecture:
        seeds = self.seeds()
        if name not in seeds:
            raise NotFound(f"space {self.name!r}: expected a seed architecture "
                           f"({', '.join(seeds) or 'none defined'}), found {name!r}")
        return self.parse(seeds[name])

    def resolve(self, arg: str) -> Architecture:
        """A seed name, a string in the space's syntax, or a path to a JSON architecture."""
        if arg in self.seeds():
            return self.seed(arg)
        if arg.endswith(".json") or ("[" not in arg and _is_file(arg)):
            data = read_architecture_file(arg)
            data.setdefault("input_shape", list(self.input_shape))
            data.setdefault("num_classes", self.num_classes)
            return from_json(data)
        return self.parse(arg)

    def mutate(self, arch: Architecture, rng: random.Random, *, tries: int = 30) -> Architecture:
        """Re-derive the subtree at one random decision with its current choice excluded.

        Decisions outside that subtree keep their choices where still valid (shapes downstream
        are re-inferred); the result always differs from ``arch``.
        """
        old = arch.choices
        order = list(range(len(arch.decisions)))
        rng.shuffle(order)
        for idx in order[:tries]:
            target = arch.decisions[idx]
            prefix = target.path + "/"

            def policy(point: DecisionPoint, target: Decision = target, prefix: str = prefix):
                if point.path == target.path:
                    if point.continuous:
                        return None
                    opts = [(o, w) for o, w in zip(point.options, point.weights or
                                                   [1.0] * len(point.options)) if o != target.choice]
                    if not opts:
                        raise _NoAlternative
                    return rng.choices([o for o, _ in opts], weights=[w for _, w in opts])[0]
                if point.path.startswith(prefix):
                    return None
                choice = old.get(point.path)
                if choice is not None and point.continuous:
                    return choice  # keep a continuous value outside the mutated subtree
                return choice if choice is not None and choice in point.options else None

            try:
                child = self.derive(policy, rng)
            except (_NoAlternative, DerivationFailed):
                continue
            if child.text != arch.text:
                return child
        raise DerivationFailed(f"space {self.name!r}: no mutation of this architecture found "
                               f"in {tries} tries")

    def crossover(self, a: Architecture, b: Architecture, rng: random.Random,
                  *, tries: int = 20) -> Architecture:
        """Swap a subtree of ``a`` for a shape-compatible subtree of ``b`` (same kind, same input
        and output shape). Decisions that no longer fit are re-sampled."""
        by_sig: dict[tuple, list[Node]] = {}
        for nb in b.tree.walk():
            if nb.children:
                by_sig.setdefault((nb.kind, nb.in_shape, nb.out_shape), []).append(nb)
        pairs = [(na, nb) for na in a.tree.walk() if na.children
                 for nb in by_sig.get((na.kind, na.in_shape, na.out_shape), ())]
        rng.shuffle(pairs)
        for na, nb in pairs[:tries]:
            pa, pb = na.path, nb.path
            table = {d.path: d.choice for d in a.decisions
                     if not (d.path == pa or d.path.startswith(pa + "/"))}
            for d in b.decisions:
                if d.path == pb or d.path.startswith(pb + "/"):
                    table[pa + d.path[len(pb):]] = d.choice

            def policy(point: DecisionPoint, table: dict = table):
                c = table.get(point.path)
                return c if c is not None and c in point.options else None

            try:
                child = self.derive(policy, rng)
            except DerivationFailed:
                continue
            if child.text not in (a.text, b.text):
                return child
        raise DerivationFailed(f"space {self.name!r}: no compatible subtrees to cross over")


def _match(point: DecisionPoint, choice: Choice) -> Choice:
    """Map a recorded choice onto the point's options (JSON turns tuples into lists, ints into
    floats ...); continuous points take the number as is."""
    if point.continuous:
        return choice
    if choice in point.options:
        return choice
    for opt in point.options:
        if str(opt) == str(choice) or json.dumps(opt) == json.dumps(choice):
            return opt
    return choice  # not an option: derive() raises with the valid ones listed


class GrammarSpace(Space):
    """A space defined by a :class:`~workbench.grammar.Grammar` and a function turning the input
    shape into the grammar's initial state."""

    kind = "grammar"

    def __init__(self, grammar: Any, input_shape: tuple[int, ...], num_classes: int, *,
                 initial_state: Callable[[tuple[int, ...]], Any] = tuple,
                 seeds: dict[str, str] | None = None, name: str = "", description: str = ""):
        super().__init__(input_shape, num_classes)
        self.grammar = grammar
        self.name = name or grammar.name
        self.version = grammar.version
        self.description = description
        self._state = initial_state(self.input_shape)
        self._seeds = dict(seeds or {})

    def _derive(self, policy, rng, backtrack):
        tree, decisions = self.grammar.derive(self._state, policy, rng, backtrack=backtrack)
        return tree, decisions, self.grammar.to_string(tree)

    def seeds(self) -> dict[str, str]:
        return dict(self._seeds)

    def parse(self, text: str) -> Architecture:
        """Parse the bracket form; errors give line, column, what was expected and what was found."""
        from workbench.parser import parse_tree

        root = parse_tree(text)
        table: dict[str, tuple[str, int]] = {}
        g = self.grammar

        def walk(nt: str, pn, path: str) -> None:
            alt = g.alternative(nt, pn.label)
            if alt is None:
                labels = g.labels(nt)
                raise ParseError(f"expected {_article(nt)} {nt} ({', '.join(labels[:10])}"
                                 f"{', ...' if len(labels) > 10 else ''}), found {pn.label!r}",
                                 text=text, pos=pn.pos)
            table[path] = (pn.label, pn.pos)
            slots = getattr(alt, "slots", ())
            if len(pn.children) != len(slots):
                want = "[" + ", ".join(s for s, _ in slots) + "]" if slots else "no children"
                raise ParseError(f"expected {pn.label} to have {len(slots)} children {want}, "
                                 f"found {len(pn.children)}", text=text, pos=pn.pos)
            for (slot, target), child in zip(slots, pn.children):
                walk(target, child, f"{path}/{slot}")

        walk(g.start, root, "root")

        def policy(point: DecisionPoint) -> str:
            label, pos = table[point.path]
            if label not in point.options:
                reason = dict(point.rejected).get(label, "not valid here")
                valid = ", ".join(map(str, point.options[:8])) or "nothing"
                raise ParseError(f"{label} is not valid at {point.path}: {reason}; valid here: "
                                 f"{valid}", text=text, pos=pos)
            return label

        return self.derive(policy, random.Random(0), backtrack=False)


# -- registry ------------------------------------------------------------------------------------
ENTRY_POINT_GROUP = "workbench.spaces"


@dataclass(frozen=True)
class SpaceEntry:
    """A registered space: its name, a factory (a callable, or ``"module:function"`` imported on
    first use, so listing spaces imports none of them), and what ``workbench spaces`` shows.

    The factory is called as ``factory(input_shape=..., num_classes=..., **options)``.
    """

    name: str
    factory: Callable[..., Space] | str
    kind: str = ""
    description: str = ""
    example_input: tuple[int, ...] = (3, 32, 32)

    def build(self, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> Space:
        factory = self.factory
        if isinstance(factory, str):
            factory = import_object(factory, "space factory")
        try:
            space = factory(input_shape=tuple(input_shape), num_classes=num_classes, **options)
        except TypeError as exc:
            raise ConfigError(f"space {self.name!r}: bad options {options} ({exc})") from None
        if not isinstance(space, Space):
            raise ConfigError(f"space {self.name!r}: expected its factory to return a Space, "
                              f"found {type(space).__name__}")
        space.name = self.name  # architectures carry the name the space was asked for
        return space


_REGISTRY: dict[str, SpaceEntry] = {}
_ENTRY_POINTS: dict[str, Any] | None = None  # name -> importlib.metadata.EntryPoint


def register_space(name: str, factory: Callable[..., Space] | str, *, kind: str = "",
                   description: str = "", example_input: tuple[int, ...] = (3, 32, 32)) -> None:
    """Register a space factory under ``name`` in this process.

    To make a space visible to every process (the CLI, UI, workers, resume), declare it as an
    entry point of the ``workbench.spaces`` group in your package, or name it as
    ``module:function`` wherever a space name is expected (``--space mymod:make_space``).
    """
    _REGISTRY[name] = SpaceEntry(name, factory, kind, description, tuple(example_input))


def _entry_points() -> dict[str, Any]:
    """The ``workbench.spaces`` entry points of every installed package, read once."""
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        from importlib.metadata import entry_points

        _ENTRY_POINTS = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _ENTRY_POINTS


def _from_entry_point(name: str) -> SpaceEntry:
    ep = _entry_points()[name]
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plug-in must not take the registry down
        raise ConfigError(f"space {name!r}: entry point {ep.value!r} failed to load "
                          f"({type(exc).__name__}: {exc})") from None
    if isinstance(obj, SpaceEntry):
        return obj if obj.name == name else SpaceEntry(name, obj.factory, obj.kind,
                                                       obj.description, obj.example_input)
    if callable(obj):
        doc = (obj.__doc__ or "").strip().splitlines()
        return SpaceEntry(name, obj, getattr(obj, "kind", ""), doc[0] if doc else "")
    raise ConfigError(f"space {name!r}: expected entry point {ep.value!r} to be a SpaceEntry or "
                      f"a factory, found {type(obj).__name__}")


def space_entry(name: str) -> SpaceEntry:
    """The entry for ``name``: registered in this process, an installed entry point, or a
    ``module:function`` factory (imported from the working directory too)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _entry_points():
        _REGISTRY[name] = _from_entry_point(name)
        return _REGISTRY[name]
    if ":" in name:
        entry = SpaceEntry(name, import_object(name, "--space"))
        _REGISTRY[name] = entry
        return entry
    known = sorted(set(_REGISTRY) | set(_entry_points()))
    raise NotFound(f"expected a search space ({', '.join(known) or 'none installed'}) or "
                   f"module:function, found {name!r}")


def list_spaces() -> list[SpaceEntry]:
    """Every space this process can build: installed entry points and registered ones."""
    for name in _entry_points():
        if name not in _REGISTRY:
            try:
                _REGISTRY[name] = _from_entry_point(name)
            except ConfigError:
                continue  # listed by get_space with its reason
    return sorted(_REGISTRY.values(), key=lambda e: e.name)


def get_space(name: str, input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10,
              **options: Any) -> Space:
    """A space bound to an input shape and class count (see :func:`space_entry` for names)."""
    return space_entry(name).build(tuple(input_shape), num_classes, **options)


MAX_ARCH_FILE_BYTES = 50_000_000


def read_architecture_file(arg: str) -> dict[str, Any]:
    """The JSON object in an architecture file, or one line saying what is wrong with it (no
    file, too large, not UTF-8, not JSON, not an object). A UTF-8 byte-order mark is accepted."""
    path = Path(arg)
    if not path.is_file():
        raise NotFound(f"expected an architecture JSON file, found no file at {arg}")
    if path.stat().st_size > MAX_ARCH_FILE_BYTES:
        raise InvalidArchitecture(f"{arg}: expected an architecture JSON file of at most "
                                  f"{MAX_ARCH_FILE_BYTES:,} bytes, found {path.stat().st_size:,}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArchitecture(f"{arg}: expected UTF-8 JSON, found a byte 0x{exc.object[exc.start]:02x} "
                                  f"at offset {exc.start}") from None
    except OSError as exc:
        raise NotFound(f"{arg}: cannot read the file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArchitecture(f"{arg}: expected architecture JSON, found invalid JSON at line "
                                  f"{exc.lineno}, column {exc.colno} ({exc.msg})") from None
    except RecursionError:
        raise InvalidArchitecture(f"{arg}: expected architecture JSON, found nesting too deep "
                                  f"to read") from None
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"{arg}: expected an architecture JSON object, found "
                                  f"{type(data).__name__}")
    return data


def from_json(data: str | dict[str, Any]) -> Architecture:
    """Rebuild an architecture from :meth:`Architecture.to_json` output by replaying its decisions
    in the space the JSON names (a registered name or ``module:function``).

    The text is checked against the replay so a hand-edited file that disagrees with its
    decisions is rejected rather than silently changed.

    >>> arch = get_space("mlp", (1, 8, 8), 10).sample(random.Random(0))
    >>> from_json(arch.to_json()) == arch
    True
    """
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidArchitecture(f"expected architecture JSON, found invalid JSON ({exc})") from None
        except RecursionError:
            raise InvalidArchitecture("expected architecture JSON, found nesting too deep to "
                                      "read") from None
    if not isinstance(data, dict):
        raise InvalidArchitecture(f"expected an architecture JSON object, found "
                                  f"{type(data).__name__}")
    missing = {"space", "input_shape", "num_classes", "decisions"} - set(data)
    if missing:
        raise InvalidArchitecture(
            f"expected architecture JSON with keys space, input_shape, num_classes, decisions; "
            f"missing {', '.join(sorted(missing))}")
    space_name, shape, classes, decisions = (data["space"], data["input_shape"],
                                             data["num_classes"], data["decisions"])
    if not isinstance(space_name, str):
        raise InvalidArchitecture(f"architecture JSON: expected space to be a name, found "
                                  f"{type(space_name).__name__}")
    if (not isinstance(shape, list) or not shape or len(shape) > 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 4096
                       for d in shape)):
        raise InvalidArchitecture(f"architecture JSON: expected input_shape as 1 to 3 positive "
                                  f"integers, found {str(shape)[:40]}")
    if not isinstance(classes, int) or isinstance(classes, bool) or not 0 < classes <= 100_000:
        raise InvalidArchitecture(f"architecture JSON: expected num_classes in 1..100000, found "
                                  f"{str(classes)[:40]}")
    if not isinstance(decisions, list) or not all(
            isinstance(d, list) and len(d) == 2 and isinstance(d[0], str) for d in decisions):
        raise InvalidArchitecture("architecture JSON: expected decisions as a list of "
                                  "[path, choice] pairs")
    space = get_space(space_name, input_shape=tuple(shape), num_classes=classes)
    arch = space.replay(decisions)
    if data.get("text") and data["text"] != arch.text:
        raise InvalidArchitecture(
            f"architecture JSON: expected text {arch.text[:60]!r}... from its decisions, "
            f"found {str(data['text'])[:60]!r}...")
    return arch


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _is_file(arg: str) -> bool:
    try:
        return Path(arg).is_file()
    except OSError:  # e.g. a long architecture string is not a valid file name
        return False

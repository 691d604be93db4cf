"""A generic probabilistic context-free grammar engine with shape-aware, define-by-run derivation.

A grammar is a set of rules ``nonterminal -> alternatives``. An alternative is either

* an :class:`Op` (a terminal): a label plus a *shape rule* ``state -> state | Invalid(reason)`` and
  an optional parameter count, or
* a :class:`Form` (a production): a label plus named *slots*, each filled by deriving another
  nonterminal. ``wiring="chain"`` threads the state through the slots in order;
  ``wiring="branch"`` treats the first slot as a split (state -> tuple of states), the middle slots
  as parallel branches and the last slot as a merge (tuple of states -> state). ``replicate=k``
  derives one branch and instantiates it k times (separate weights, same structure).

Derivation asks a policy at every decision point with only the *valid* options (shape rules and
limits already applied). When a position runs out of options the engine backtracks: it goes back to
the previous sibling slot, excludes the label that slot chose, and re-derives it.

A small MLP grammar, in a few lines::

    >>> import random
    >>> from workbench.grammar import Form, Grammar, Invalid, Op
    >>> def dense(n):
    ...     return Op("linear", (n,), rule=lambda s: (n,), params=lambda s: s[-1] * n + n)
    >>> relu = Op("relu", rule=lambda s: s)
    >>> g = Grammar("mlp", start="net", rules={
    ...     "net": [Form("stack", [("block", "block"), ("rest", "net")], weight=0.5),
    ...             Form("last", [("block", "block")], weight=0.5, grows=False)],
    ...     "block": [Form("dense", [("width", "width"), ("act", "act")], grows=False)],
    ...     "width": [dense(32), dense(64)],
    ...     "act": [relu, Op("identity", rule=lambda s: s)],
    ... })
    >>> tree, decisions = g.derive((16,), rng=random.Random(0))
    >>> g.to_string(tree)
    'last[dense[linear(32), relu]]'
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from workbench.architecture import Decision, DecisionPoint, Node, Policy
from workbench.errors import DerivationFailed, GrammarError, InvalidArchitecture

Weight = float | Callable[[int], float]  # a constant, or a function of the module depth


class Invalid(NamedTuple):
    """Returned by a shape rule for an option that is not valid on its input."""

    reason: str


def _fmt_arg(a: Any) -> str:
    return repr(a) if isinstance(a, str) and not a.replace(".", "").replace("/", "").isalnum() else str(a)


def make_label(name: str, args: tuple) -> str:
    return f"{name}({','.join(_fmt_arg(a) for a in args)})" if args else name


@dataclass(frozen=True)
class Op:
    """A terminal: one operation with its shape rule and parameter count."""

    name: str
    args: tuple = ()
    rule: Callable[[Any], Any] = lambda state: state
    params: Callable[[Any], int] | None = None
    weight: Weight = 1.0
    symbol: str = ""

    @property
    def label(self) -> str:
        return make_label(self.name, self.args)


@dataclass(frozen=True)
class Form:
    """A production: a label with named slots, each a nonterminal to derive."""

    name: str
    slots: Sequence[tuple[str, str]]
    args: tuple = ()
    weight: Weight = 1.0
    wiring: str = "chain"  # "chain" | "branch"
    replicate: int = 1  # branch wiring: derive one branch, instantiate it this many times
    grows: bool = True  # False: still allowed once a depth/size limit is reached
    symbol: str = ""

    @property
    def label(self) -> str:
        return make_label(self.name, self.args)


@dataclass(frozen=True)
class Limits:
    """Hard limits. ``max_depth`` bounds nesting of growing forms; ``max_nodes`` the tree size;
    ``max_params`` the parameter count (branches replicated k times count k times)."""

    max_depth: int = 48
    max_nodes: int = 1500
    max_params: int = 50_000_000
    max_backtracks: int = 400


class _DeadEnd(Exception):
    """Internal: no valid option at a position (caught by backtracking)."""


@dataclass
class _Ctx:
    policy: Policy | None
    rng: random.Random
    backtrack: bool
    decisions: list[Decision] = field(default_factory=list)
    nodes: int = 0
    params: int = 0
    reserved: int = 0
    backtracks: int = 0

    def checkpoint(self) -> tuple[int, int, int, int]:
        return len(self.decisions), self.nodes, self.params, self.reserved

    def restore(self, cp: tuple[int, int, int, int]) -> None:
        n, self.nodes, self.params, self.reserved = cp
        del self.decisions[n:]


class Grammar:
    """A shape-aware PCFG. See the module docstring for an example."""

    def __init__(self, name: str, start: str, rules: dict[str, Sequence[Op | Form]], *,
                 limits: Limits | None = None,
                 shape_of: Callable[[Any], tuple] | None = None,
                 version: str = "1"):
        self.name, self.start, self.version = name, start, version
        self.rules = {nt: tuple(alts) for nt, alts in rules.items()}
        self.limits = limits or Limits()
        self.shape_of = shape_of or (lambda s: tuple(s) if isinstance(s, tuple) else ())
        self._by_label: dict[str, dict[str, Op | Form]] = {}
        for nt, alts in self.rules.items():
            if not alts:
                raise GrammarError(f"grammar {name!r}: rule {nt!r} has no alternatives")
            table: dict[str, Op | Form] = {}
            for alt in alts:
                if alt.label in table:
                    raise GrammarError(f"grammar {name!r}: rule {nt!r} has label {alt.label!r} twice")
                if isinstance(alt, Form):
                    for slot, target in alt.slots:
                        if target not in self.rules:
                            raise GrammarError(
                                f"grammar {name!r}: {nt} -> {alt.label} slot {slot!r} names "
                                f"unknown rule {target!r}; known: {', '.join(self.rules)}")
                    if alt.wiring == "branch" and len(alt.slots) < 3:
                        raise GrammarError(f"grammar {name!r}: branch form {alt.label} needs "
                                           f"split, at least one branch and merge slots")
                table[alt.label] = alt
            self._by_label[nt] = table
        if start not in self.rules:
            raise GrammarError(f"grammar {name!r}: start rule {start!r} is not defined")
        self.min_size = self._min_sizes()

    # -- static analysis ---------------------------------------------------------------------
    def _min_sizes(self) -> dict[str, int]:
        inf = 1 << 30
        size = dict.fromkeys(self.rules, inf)
        changed = True
        while changed:
            changed = False
            for nt, alts in self.rules.items():
                best = min(self._alt_min(a, size) for a in alts)
                if best < size[nt]:
                    size[nt], changed = best, True
        bad = [nt for nt, s in size.items() if s >= inf]
        if bad:
            raise GrammarError(f"grammar {self.name!r}: rules {bad} never finish (no terminal path)")
        return size

    @staticmethod
    def _alt_min(alt: Op | Form, size: dict[str, int]) -> int:
        if isinstance(alt, Op):
            return 1
        return min(1 + sum(size[t] for _, t in alt.slots), 1 << 30)

    def alternative(self, nonterminal: str, label: str) -> Op | Form | None:
        return self._by_label[nonterminal].get(label)

    def labels(self, nonterminal: str) -> list[str]:
        return list(self._by_label[nonterminal])

    # -- derivation --------------------------------------------------------------------------
    def derive(self, state: Any, policy: Policy | None = None, rng: random.Random | None = None,
               *, backtrack: bool = True) -> tuple[Node, tuple[Decision, ...]]:
        """Derive a tree from ``state`` asking ``policy`` at each decision point.

        ``backtrack=False`` is for replay and parsing: a recorded choice that is not valid is the
        policy's error to raise (the engine then asks it even when no option is left).
        """
        ctx = _Ctx(policy, rng or random.Random(0), backtrack)
        try:
            node, _ = self._derive(ctx, self.start, state, "root", 0, 1, frozenset())
        except _DeadEnd as exc:
            raise DerivationFailed(f"grammar {self.name!r}: no valid derivation ({exc})") from None
        return node, tuple(ctx.decisions)

    def _options(self, ctx: _Ctx, nt: str, state: Any, depth: int, mult: int,
                 excluded: frozenset) -> tuple[list, list[tuple[str, str]]]:
        lim = self.limits
        valid: list[tuple[Op | Form, Any, int]] = []
        rejected: list[tuple[str, str]] = []
        for alt in self.rules[nt]:
            label = alt.label
            if label in excluded:
                continue
            if isinstance(alt, Op):
                out = alt.rule(state)
                if isinstance(out, Invalid):
                    rejected.append((label, out.reason))
                    continue
                p = alt.params(state) * mult if alt.params else 0
                if ctx.params + p > lim.max_params:
                    rejected.append((label, f"parameter limit {lim.max_params:,} reached"))
                    continue
                if ctx.nodes + 1 + ctx.reserved > lim.max_nodes:
                    rejected.append((label, f"node limit {lim.max_nodes} reached"))
                    continue
                valid.append((alt, out, p))
            else:
                if alt.grows and depth >= lim.max_depth:
                    rejected.append((label, f"depth limit {lim.max_depth} reached"))
                    continue
                if ctx.nodes + self._alt_min(alt, self.min_size) + ctx.reserved > lim.max_nodes:
                    rejected.append((label, f"node limit {lim.max_nodes} reached"))
                    continue
                valid.append((alt, None, 0))
        return valid, rejected

    def _derive(self, ctx: _Ctx, nt: str, state: Any, path: str, depth: int, mult: int,
                excluded: frozenset) -> tuple[Node, Any]:
        valid, rejected = self._options(ctx, nt, state, depth, mult, excluded)
        while True:
            labels = tuple(a.label for a, _, _ in valid)
            if not labels and ctx.backtrack:
                raise _DeadEnd(f"at {path}: no valid {nt}"
                               + (f" ({rejected[0][0]}: {rejected[0][1]})" if rejected else ""))
            weights = [_weight(a.weight, depth) for a, _, _ in valid]
            total = sum(weights)
            point = DecisionPoint(path, labels, tuple(w / total for w in weights) if total else (),
                                  kind=nt, depth=depth, rejected=tuple(rejected))
            choice = ctx.policy(point) if ctx.policy is not None else None
            if choice is None:
                if not labels:
                    raise InvalidArchitecture(f"at {path}: no valid {nt} here")
                choice = ctx.rng.choices(labels, weights=weights if total else None)[0]
            elif choice not in labels:
                reason = dict(rejected).get(str(choice), "not an option of this rule")
                raise InvalidArchitecture(
                    f"at {path}: expected one of {_short(labels)}, found {choice!r} ({reason})")
            i = labels.index(choice)
            alt, out, p = valid[i]
            cp = ctx.checkpoint()
            ctx.decisions.append(Decision(path, choice))
            try:
                if isinstance(alt, Op):
                    ctx.nodes += 1
                    ctx.params += p
                    node = Node(alt.symbol or alt.name, alt.label, nt, path, self.shape_of(state),
                                self.shape_of(out), alt.args)
                    return node, out
                return self._expand(ctx, nt, alt, state, path, depth, mult)
            except _DeadEnd:
                if not ctx.backtrack:
                    raise
                ctx.restore(cp)
                ctx.backtracks += 1
                if ctx.backtracks > self.limits.max_backtracks:
                    raise DerivationFailed(
                        f"grammar {self.name!r}: gave up after {ctx.backtracks} backtracks "
                        f"(last at {path})") from None
                del valid[i]

    def _expand(self, ctx: _Ctx, nt: str, form: Form, state: Any, path: str, depth: int,
                mult: int) -> tuple[Node, Any]:
        slots = list(form.slots)
        n = len(slots)
        branch = form.wiring == "branch"
        k = form.replicate if branch and form.replicate > 1 else max(n - 2, 1)
        ctx.nodes += 1
        ctx.reserved += sum(self.min_size[t] for _, t in slots)
        results: list[tuple[Node, Any]] = []
        excluded: list[set[str]] = [set() for _ in slots]
        cps: list[Any] = [None] * n
        i = 0
        while i < n:
            slot, target = slots[i]
            cps[i] = ctx.checkpoint()
            ctx.reserved -= self.min_size[target]
            if not branch:
                inp, m = (results[-1][1] if i else state), mult
            elif i == 0:
                inp, m = state, mult
            elif i == n - 1:
                outs = tuple(r[1] for r in results[1:])
                inp, m = (outs * form.replicate if form.replicate > 1 else outs), mult
            else:
                parts = results[0][1]
                inp = parts[i - 1] if form.replicate == 1 else parts[0]
                m = mult * form.replicate if form.replicate > 1 else mult
            try:
                results.append(self._derive(ctx, target, inp, f"{path}/{slot}", depth + 1, m,
                                            frozenset(excluded[i])))
                i += 1
            except _DeadEnd:
                if not ctx.backtrack or i == 0:
                    raise
                # slot i left ctx as at cps[i]; rewind to before slot i-1 and exclude its label
                excluded[i].clear()
                i -= 1
                excluded[i].add(results.pop()[0].label)
                ctx.restore(cps[i])
                ctx.backtracks += 1
                if ctx.backtracks > self.limits.max_backtracks:
                    raise DerivationFailed(
                        f"grammar {self.name!r}: gave up after {ctx.backtracks} backtracks "
                        f"(last at {path}/{slot})") from None
        out = results[-1][1]
        attrs = (("k", k),) if branch else ()
        node = Node(form.symbol or form.name, form.label, nt, path, self.shape_of(state),
                    self.shape_of(out), form.args, tuple(r[0] for r in results), attrs)
        return node, out

    # -- printing ----------------------------------------------------------------------------
    @staticmethod
    def to_string(node: Node) -> str:
        """The canonical bracket form: ``label[child, child]`` for forms, ``label`` for ops."""
        if not node.children:
            return node.label
        return f"{node.label}[{', '.join(Grammar.to_string(c) for c in node.children)}]"


def _weight(w: Weight, depth: int) -> float:
    return float(w(depth)) if callable(w) else float(w)


def _short(labels: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(labels[:n])
    return shown + (f", ... ({len(labels) - n} more)" if len(labels) > n else "") if labels else "nothing"

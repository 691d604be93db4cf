"""The tree space: a DSL module tree bound to an input shape and a class count, with the
``path=value; ...`` text form.

Deriving walks the tree in data-flow order and asks the policy at every hyperparameter it
reaches; the result is the same :class:`~workbench.architecture.Architecture` (decisions + tree)
that grammar spaces produce.

>>> import random
>>> from workbench.dsl import choice, linear, seq
>>> space = DSLSpace(seq(linear(choice([2, 4], name="units"))), (3,), 2, name="doc")
>>> arch = space.parse("units=4")
>>> arch.text, space.size(), space.replay(arch.decisions) == arch
('units=4', 2, True)
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from workbench.architecture import Architecture, Decision
from workbench.dsl.core import Ctx, Module, as_module
from workbench.dsl.count import count_space
from workbench.errors import ParseError
from workbench.spaces import Space

__all__ = ["DSLSpace", "to_text"]


def to_text(decisions: Sequence[Decision]) -> str:
    """Canonical text: ``path=<JSON value>`` joined by ``; `` in derivation order."""
    return "; ".join(f"{d.path}={json.dumps(d.choice)}" for d in decisions)


class DSLSpace(Space):
    """A tree space: ``root`` (a module) bound to an input shape and a class count."""

    kind = "tree"

    def __init__(self, root: Module, input_shape: tuple[int, ...], num_classes: int, *,
                 name: str, description: str = "", version: str = "1",
                 seeds: dict[str, str] | None = None, max_tries: int = 1000):
        super().__init__(input_shape, num_classes)
        self.root = as_module(root, f"space {name!r}")
        self.name, self.description, self.version = name, description, version
        self.max_tries = max_tries
        self._seeds = dict(seeds or {})
        self._size: tuple[int | None] | None = None

    def _derive(self, policy, rng: random.Random, backtrack: bool):
        ctx = Ctx(policy, rng, backtrack, self.max_tries)
        tree, _ = self.root.derive(ctx, "", self.input_shape)
        decisions = tuple(ctx.decisions)
        return tree, decisions, to_text(decisions)

    def size(self) -> int | None:
        """Distinct complete decision sequences (exact), or None with a continuous range."""
        if self._size is None:
            self._size = (count_space(self.root),)
        return self._size[0]

    def seeds(self) -> dict[str, str]:
        return dict(self._seeds)

    def parse(self, text: str) -> Architecture:
        """Parse ``path=value; ...`` (values in JSON; bare words are taken as strings)."""
        decisions: list[Decision] = []
        seen: set[str] = set()
        pos = 0
        for part in text.split(";"):
            start = pos + len(part) - len(part.lstrip())
            pos += len(part) + 1
            if not part.strip():
                continue
            path, eq, raw = part.strip().partition("=")
            path = path.strip()
            if not eq or not path:
                raise ParseError(f"expected 'path=value' in {self.name} architecture text, "
                                 f"found {part.strip()[:40]!r}", text=text, pos=start)
            if path in seen:
                raise ParseError(f"expected each path once, found {path!r} again",
                                 text=text, pos=start)
            seen.add(path)
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw.strip()
            decisions.append(Decision(path, value))
        return self.replay(decisions)

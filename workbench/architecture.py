"""The one data model that flows through the workbench.

``Space --derive(policy)--> Architecture --compile--> nn.Module --evaluate--> Result``

* :class:`Decision` -- one choice at one named decision point. Paths are stable names derived from
  the position in the derivation (``root/first/op``), so the same path means the same decision
  across candidates.
* :class:`Node` -- one node of the derivation tree, with inferred input/output shapes.
* :class:`Architecture` -- frozen value: space id + version, the bound input shape and class count,
  the decision sequence, the derived tree and its canonical string form.
* :class:`DecisionPoint` and :data:`Policy` -- the define-by-run protocol. A space asks its policy
  at each decision point; the policy answers with one of the valid options or ``None`` ("I do not
  know this path": the space then samples from its own probabilities with its seeded generator).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

Choice = str | int | float | bool
Shape = tuple  # a tensor shape without the batch dimension, e.g. (3, 32, 32) or (64, 128)


@dataclass(frozen=True)
class Decision:
    """One choice at one decision point.

    >>> Decision("root/op", "relu")
    Decision(path='root/op', choice='relu')
    """

    path: str
    choice: Choice


@dataclass(frozen=True)
class DecisionPoint:
    """What a policy sees: the path, the valid options and the space's own probabilities.

    For a continuous hyperparameter ``options`` is empty and ``low``/``high``/``log`` describe the
    range; the policy answers with a number in it.
    """

    path: str
    options: tuple[Choice, ...]
    weights: tuple[float, ...] = ()
    kind: str = ""
    depth: int = 0
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    rejected: tuple[tuple[Choice, str], ...] = ()  # invalid options with the reason, for messages

    @property
    def continuous(self) -> bool:
        return not self.options and self.low is not None


Policy = Callable[[DecisionPoint], Choice | None]


@dataclass(frozen=True)
class Node:
    """One node of a derivation tree.

    ``symbol`` is what the compiler, diagrammer and exporters dispatch on (``sequential``,
    ``linear``, ``conv2d`` ...); ``label`` is its printed form with arguments (``linear(64)``);
    ``kind`` names the grammar position it fills (``module``, ``op``, ``split`` ...); ``path`` is the
    decision path that chose it. Shapes exclude the batch dimension. For split nodes ``out_shape``
    is the shape of each of the parts; for merge nodes ``in_shape`` is the shape of the first part.
    """

    symbol: str
    label: str
    kind: str
    path: str
    in_shape: Shape
    out_shape: Shape
    args: tuple = ()
    children: tuple[Node, ...] = ()
    attrs: tuple[tuple[str, Any], ...] = ()  # extra static facts, e.g. (("k", 4),)

    def attr(self, name: str, default: Any = None) -> Any:
        for key, value in self.attrs:
            if key == name:
                return value
        return default

    def walk(self) -> Iterator[Node]:
        """Pre-order traversal."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def size(self) -> int:
        return sum(1 for _ in self.walk())

    @property
    def depth(self) -> int:
        return 1 + max((c.depth for c in self.children), default=0)

    def find(self, path: str) -> Node | None:
        for node in self.walk():
            if node.path == path:
                return node
        return None


@dataclass(frozen=True)
class Architecture:
    """A fully specified candidate: decisions plus the tree derived from them.

    ``text`` is the canonical string form (the bracket syntax for grammar spaces); ``hash`` is a
    content hash of space, bound shapes and text, used to deduplicate. Use
    :func:`workbench.spaces.get_space` and its ``replay``/``parse`` to rebuild one.
    """

    space: str
    version: str
    input_shape: tuple[int, ...]
    num_classes: int
    decisions: tuple[Decision, ...]
    tree: Node
    text: str
    hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", content_hash(self.space, self.input_shape,
                                                          self.num_classes, self.text))

    def __str__(self) -> str:
        return self.text

    @property
    def choices(self) -> dict[str, Choice]:
        """Decisions as a path -> choice mapping (paths are unique)."""
        return {d.path: d.choice for d in self.decisions}

    @property
    def nodes(self) -> int:
        return self.tree.size

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "version": self.version,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "decisions": [[d.path, d.choice] for d in self.decisions],
            "text": self.text,
            "hash": self.hash,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def content_hash(space: str, input_shape: tuple[int, ...], num_classes: int, text: str) -> str:
    """A stable 16-hex-digit hash of what determines the compiled network."""
    key = f"{space}|{','.join(map(str, input_shape))}|{num_classes}|{text}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def changed_paths(parent: Architecture, child: Architecture) -> frozenset[str]:
    """The topmost paths where two architectures of one space differ (what a mutation changed).

    Trees are compared by path: a node whose label or number of children differs is changed and
    its subtree is not looked into further.

    >>> from workbench.spaces import get_space
    >>> sp = get_space("einspace", (3, 8, 8), 10)
    >>> a = sp.parse("sequential[computation[linear(16)], computation[relu]]")
    >>> b = sp.parse("sequential[computation[linear(32)], computation[relu]]")
    >>> sorted(changed_paths(a, b))
    ['root/first/op']
    """
    if parent.space != child.space:
        raise ConfigError(f"changed_paths: expected two architectures of one space, found "
                          f"{parent.space!r} and {child.space!r}")
    out: set[str] = set()

    def compare(a: Node, b: Node) -> None:
        if (a.symbol, a.label, len(a.children)) != (b.symbol, b.label, len(b.children)):
            out.add(a.path)
            return
        for ca, cb in zip(a.children, b.children):
            if ca.path != cb.path:
                out.add(a.path)
                return
            compare(ca, cb)

    compare(parent.tree, child.tree)
    return frozenset(out)

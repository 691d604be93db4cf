"""NAS-Bench-201: a cell of 4 nodes whose 6 edges each choose one of 5 operations (5**6 = 15,625).

Node ``j`` of the cell sums ``op(j<-i)(node i)`` over ``i < j``; node 3 is the cell's output. The
network is NB201's: a 3x3 conv stem, three stages of ``cells_per_stage`` cells at C, 2C and 4C
channels separated by residual reduction blocks (stride 2), then BatchNorm + ReLU; the workbench's
head (global mean, linear) classifies. ``nor_conv`` is ReLU -> conv (no bias) -> BatchNorm.

The canonical text is NB201's own architecture string, so architectures from the benchmark's
tables paste straight in:

>>> import random
>>> space = make_space((3, 8, 8), 10)
>>> space.size()
15625
>>> arch = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
>>> [d.choice for d in arch.decisions][:3]
['nor_conv_3x3', 'none', 'nor_conv_3x3']
>>> space.replay(arch.decisions) == arch
True

The tabular evaluator answers with the benchmark's measured 12-epoch CIFAR-10 validation accuracy
(when the data files are present):

>>> nb201_lookup(arch)["val_accuracy"]  # doctest: +SKIP
88.65...

A plain :class:`~workbench.spaces.Space` rather than a grammar: the cell is a fixed list of six
slots, so the grammar engine's recursion, shape rules and backtracking would add nothing.
"""

from __future__ import annotations

import csv
import functools
import os
import random
from pathlib import Path

from workbench.architecture import Architecture, Decision, DecisionPoint, Node
from workbench.errors import ConfigError, InvalidArchitecture, NotFound, ParseError
from workbench.spaces import Space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), NB201's string order
VERSION = "1"
# The root node names the module that holds the network's torch modules and registers its
# builder; the compiler imports it on first use, so importing this module stays torch-free.
BUILDERS_MODULE = "search_spaces.nb201_torch"


def edge_path(to: int, frm: int) -> str:
    return f"root/edge_{to}_{frm}"


def arch_string(ops: list[str] | tuple[str, ...]) -> str:
    """NB201's string for six ops in edge order: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def parse_arch_string(text: str) -> list[str]:
    """The six ops of an NB201 string, checked; errors name the position."""
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise ParseError(f"expected an NB201 string with 3 '+'-separated nodes, found {len(nodes)}",
                         text=text, pos=0)
    ops: list[str] = []
    for j, part in enumerate(nodes, start=1):
        items = [p for p in part.strip().strip("|").split("|")]
        if len(items) != j:
            raise ParseError(f"expected {j} edges into node {j}, found {len(items)}",
                             text=text, pos=text.find(part))
        for i, item in enumerate(items):
            op, _, src = item.partition("~")
            if op not in OPS or src != str(i):
                raise ParseError(f"expected 'op~{i}' with op one of {', '.join(OPS)}, "
                                 f"found {item!r}", text=text, pos=max(text.find(item), 0))
            ops.append(op)
    return ops


class NB201Space(Space):
    name = "nb201"
    version = VERSION
    kind = "cell"
    description = "NAS-Bench-201 cell: 6 edges x 5 ops (15,625), tabular 12-epoch CIFAR-10 lookup"

    def __init__(self, input_shape, num_classes, *, channels: int = 16, cells_per_stage: int = 5):
        super().__init__(input_shape, num_classes)
        if len(self.input_shape) != 3 or min(self.input_shape[1:]) < 4:
            raise ConfigError(f"nb201: expected an image input shape C,H,W with H, W >= 4, "
                              f"found {self.input_shape}")
        if channels < 1 or cells_per_stage < 1:
            raise ConfigError(f"nb201: expected channels >= 1 and cells_per_stage >= 1, found "
                              f"{channels}, {cells_per_stage}")
        self.channels, self.cells_per_stage = int(channels), int(cells_per_stage)

    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def _derive(self, policy, rng: random.Random, backtrack: bool):
        c, h, w = self.input_shape
        cell_shape = (self.channels, h, w)
        uniform = tuple(1 / len(OPS) for _ in OPS)
        decisions, children, ops = [], [], []
        for to, frm in EDGES:
            point = DecisionPoint(edge_path(to, frm), OPS, uniform, kind="edge", depth=1)
            choice = policy(point) if policy is not None else None
            if choice is None:
                choice = rng.choice(OPS)
            elif not isinstance(choice, str) or choice not in OPS:  # OPS holds only strings
                raise InvalidArchitecture(f"at {point.path}: expected one of {', '.join(OPS)}, "
                                          f"found {choice!r}")
            decisions.append(Decision(point.path, choice))
            ops.append(choice)
            children.append(Node(choice, choice, "edge", point.path, cell_shape, cell_shape))
        out = (4 * self.channels, _down(_down(h)), _down(_down(w)))
        tree = Node("nb201", f"nb201({self.channels},{self.cells_per_stage})", "network", "root",
                    self.input_shape, out, (self.channels, self.cells_per_stage), tuple(children),
                    (("builders", BUILDERS_MODULE),))
        return tree, tuple(decisions), arch_string(ops)

    def parse(self, text: str) -> Architecture:
        """An NB201 string (``|op~0|+...``) or the generic ``path=choice; ...`` list."""
        if text.strip().startswith("|"):
            ops = parse_arch_string(text)
            return self.replay(Decision(edge_path(*e), o) for e, o in zip(EDGES, ops))
        return super().parse(text)

    def crossover(self, a: Architecture, b: Architecture, rng: random.Random,
                  *, tries: int = 20) -> Architecture:
        """Uniform crossover: each edge's op from either parent (the cell has no subtrees)."""
        ca, cb = a.choices, b.choices
        for _ in range(tries):
            table = {p: (ca if rng.random() < 0.5 else cb)[p] for p in ca}
            child = self.replay(Decision(p, c) for p, c in table.items())
            if child.text not in (a.text, b.text):
                return child
        from workbench.errors import DerivationFailed

        raise DerivationFailed("space 'nb201': parents differ in too few edges to cross over")


def _down(n: int) -> int:
    return (n - 1) // 2 + 1  # a 3x3 conv, stride 2, padding 1


def params_count(arch: Architecture) -> int:
    """Trainable parameters of the compiled network, in closed form (checked against torch in the
    tests): convs have no bias, every BatchNorm is affine, the head is a biased linear layer."""
    c, n = arch.tree.args
    cin = arch.input_shape[0]

    def rcb(ci: int, co: int, k: int) -> int:
        return ci * co * k * k + 2 * co

    def cell(ch: int) -> int:
        per = {"nor_conv_1x1": rcb(ch, ch, 1), "nor_conv_3x3": rcb(ch, ch, 3)}
        return sum(per.get(node.symbol, 0) for node in arch.tree.children)

    def reduction(ch: int) -> int:
        return rcb(ch, 2 * ch, 3) + rcb(2 * ch, 2 * ch, 3) + ch * 2 * ch

    total = cin * c * 9 + 2 * c  # stem conv + BN
    total += n * (cell(c) + cell(2 * c) + cell(4 * c)) + reduction(c) + reduction(2 * c)
    total += 2 * 4 * c  # last BN
    return total + 4 * c * arch.num_classes + arch.num_classes


# -- tabular evaluator ----------------------------------------------------------------------------
def benchmarks_dir() -> Path:
    """``$WORKBENCH_NAS_BENCHMARKS`` or ``<repository root>/../shared/nas-benchmarks``."""
    env = os.environ.get("WORKBENCH_NAS_BENCHMARKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "nas-benchmarks"


def _table_path(name: str) -> Path:
    path = benchmarks_dir() / name
    if not path.is_file():
        raise NotFound(f"nb201 lookup: expected the benchmark table {name} at {path}, found no "
                       f"file (set WORKBENCH_NAS_BENCHMARKS to the folder that holds it)")
    return path


@functools.lru_cache(maxsize=2)
def _table(folder: str) -> dict[str, dict[str, float | None]]:
    del folder  # part of the cache key only: a changed env var reloads
    rows: dict[str, dict[str, float | None]] = {}
    with _table_path("nb201_minibench_12ep.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            rows[r["arch_str"]] = {"val_accuracy": float(r["c10valid_xvalid_12ep"]),
                                   "test_accuracy": float(r["c10_test_12ep"]), "flops": None}
    merged = benchmarks_dir() / "nb201_merged.csv"
    if merged.is_file():  # optional: FLOPs from HW-NAS-Bench where it measured the cell
        with merged.open(newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("c10_mflops") and r["arch_str"] in rows:
                    rows[r["arch_str"]]["flops"] = float(r["c10_mflops"]) * 1e6
    return rows


def nb201_lookup(arch: Architecture, fidelity: float | None = None) -> dict:
    """Measured NB201 results for ``arch``: ``val_accuracy`` (12-epoch CIFAR-10 valid, percent),
    ``test_accuracy`` (12-epoch CIFAR-10 test), ``params`` (of this workbench network),
    ``flops`` (HW-NAS-Bench's CIFAR-10 FLOPs where measured, else None) and ``fidelity`` (12).

    The table holds 12-epoch results only, so ``fidelity`` must be None or 12."""
    if arch.space != "nb201":
        raise ConfigError(f"nb201 lookup: expected an nb201 architecture, found space {arch.space!r}")
    if fidelity is not None and float(fidelity) != 12:
        raise ConfigError(f"nb201 lookup: expected fidelity 12 epochs (the table's only one) or "
                          f"None, found {fidelity!r}")
    row = _table(str(benchmarks_dir())).get(arch.text)
    if row is None:
        raise NotFound(f"nb201 lookup: expected {arch.text} in the table, found no row")
    return {**row, "params": params_count(arch), "fidelity": 12}


def evaluate(arch: Architecture, budget=None, *, fidelity: float | None = None) -> dict:
    """The study loop's evaluator form (``--evaluator search_spaces.nb201:evaluate``): the table
    lookup in place of training. ``budget`` is ignored -- the table answers for 12 epochs, which
    ``metrics["fidelity"]`` records; a searcher-set ``fidelity`` other than 12 is an error."""
    return nb201_lookup(arch, fidelity)


def make_space(input_shape=(3, 32, 32), num_classes: int = 10, *, channels: int = 16,
               cells_per_stage: int = 5) -> NB201Space:
    """The NB201 space; ``channels``/``cells_per_stage`` are NB201's C=16, N=5 by default."""
    return NB201Space(input_shape, num_classes, channels=channels, cells_per_stage=cells_per_stage)

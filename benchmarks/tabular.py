"""Tabular benchmark tables for ``searcher_quality.py``: NAS-Bench-201 (12-epoch validation,
200-epoch test, HW-NAS-Bench edge-GPU latency) and a search space over the NAS-Bench-101 sample.

Everything is read from ``../shared/nas-benchmarks`` (or ``$WORKBENCH_NAS_BENCHMARKS``); see its
README for where each file comes from.

The NAS-Bench-101 sample holds 1,000 cells, not the whole space, so it is searched as a space of
its own: a trie over the sample's cells. The decisions are the vertex count, each intermediate
vertex's operation and each upper-triangle edge bit, asked in that order; at every point the
options are the values that some sampled cell with the same decisions so far has, so every
derivation is one of the 1,000 cells. A decision with one such value is still asked (with one
option), which keeps paths stable. It is a define-by-run space whose option sets change with the
decisions before them -- the setting the searchers must handle anyway.

>>> import random
>>> space = NB101SampleSpace()
>>> arch = space.sample(random.Random(0))
>>> space.replay(arch.decisions) == arch and arch.text in space.rows
True
"""

from __future__ import annotations

import csv
import functools
import json
import random
from pathlib import Path

from search_spaces.nb201 import benchmarks_dir
from workbench.architecture import Decision, DecisionPoint, Node
from workbench.spaces import Space

OP_NAMES = {0: "conv3x3", 1: "conv1x1", 2: "maxpool3x3"}


@functools.lru_cache(maxsize=1)
def nb201_rows(folder: str | None = None) -> dict[str, dict[str, float | None]]:
    """arch string -> {val12, test200, latency (edge GPU, ms; None where not measured)}."""
    path = Path(folder or benchmarks_dir()) / "nb201_merged.csv"
    rows = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            lat = r["hw_edgegpu_latency"]
            rows[r["arch_str"]] = {"val12": float(r["c10valid_xvalid_12ep"]),
                                   "test200": float(r["c10_test_200ep"]),
                                   "latency": float(lat) if lat else None}
    return rows


@functools.lru_cache(maxsize=1)
def nb101_rows(folder: str | None = None) -> dict[str, dict]:
    """cell text -> {val12, val36, val108 (percent), params, ops, adjacency}."""
    path = Path(folder or benchmarks_dir()) / "nb101_sample_1k.json"
    data = json.loads(path.read_text())
    rows = {}
    for i in range(len(data["key"])):
        raw = data["operations"][i]  # -1 input, -2 output, then -3 padding to 7 vertices
        n = raw.index(-2) + 1
        ops = [OP_NAMES[o] for o in raw[1:n - 1]]
        adj = [[int(x) for x in row[:n]] for row in data["adjacency"][i][:n]]
        rows[cell_text(ops, adj)] = {
            "val12": 100 * data["12_final_validation_accuracy"][i],
            "val36": 100 * data["36_final_validation_accuracy"][i],
            "val108": 100 * data["108_final_validation_accuracy"][i],
            "params": data["trainable_parameters"][i], "ops": ops, "adjacency": adj}
    return rows


def cell_text(ops: list[str], adj: list[list[int]]) -> str:
    n = len(adj)
    bits = "".join(str(adj[i][j]) for i in range(n) for j in range(i + 1, n))
    return f"{n}:{','.join(ops)}:{bits}"


def _sequence(ops: list[str], adj: list[list[int]]) -> list[tuple[str, object]]:
    n = len(adj)
    seq: list[tuple[str, object]] = [("cell/vertices", n)]
    seq += [(f"cell/v{v + 1}/op", op) for v, op in enumerate(ops)]
    seq += [(f"cell/edge_{i}_{j}", adj[i][j]) for i in range(n) for j in range(i + 1, n)]
    return seq


class NB101SampleSpace(Space):
    """The 1,000 sampled NAS-Bench-101 cells as a trie-shaped define-by-run space."""

    name = "nb101_sample"
    kind = "cell"
    description = "the NAS-Bench-101 1k sample as a trie of decisions (benchmarks only)"

    def __init__(self, input_shape=(3, 32, 32), num_classes: int = 10):
        super().__init__(input_shape, num_classes)
        self.rows = nb101_rows()
        self._seqs = [_sequence(r["ops"], r["adjacency"]) for r in self.rows.values()]

    def size(self) -> int:
        return len(self.rows)

    def _derive(self, policy, rng: random.Random, backtrack: bool):
        alive = self._seqs
        decisions = []
        k = 0
        while True:
            path = alive[0][k][0]
            counts: dict[object, int] = {}
            for s in alive:
                counts[s[k][1]] = counts.get(s[k][1], 0) + 1
            options = tuple(sorted(counts, key=str))
            weights = tuple(counts[o] / len(alive) for o in options)
            point = DecisionPoint(path, options, weights, kind="cell", depth=1)
            choice = policy(point) if policy is not None else None
            if choice is None:
                choice = rng.choices(options, weights=weights)[0]
            elif choice not in options:
                from workbench.errors import InvalidArchitecture

                raise InvalidArchitecture(f"at {path}: expected one of {options}, found {choice!r}")
            decisions.append(Decision(path, choice))
            alive = [s for s in alive if s[k][1] == choice]
            k += 1
            if k == len(alive[0]):
                break
        seq = alive[0]
        n = seq[0][1]
        ops = [c for p, c in seq[1:n - 1]]
        bits = [c for p, c in seq[n - 1:]]
        adj = [[0] * n for _ in range(n)]
        it = iter(bits)
        for i in range(n):
            for j in range(i + 1, n):
                adj[i][j] = next(it)
        text = cell_text(ops, adj)
        shape = tuple(self.input_shape)
        children = tuple(Node(op, op, "op", f"cell/v{v + 1}/op", shape, shape)
                         for v, op in enumerate(ops))
        tree = Node("nb101_cell", "nb101_cell", "cell", "root", shape, shape, (), children)
        return tree, tuple(decisions), text

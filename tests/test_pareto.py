"""Pareto utilities (hand-computed cases) and ``workbench pareto`` / ``workbench searchers``."""

from __future__ import annotations

import json
import math
import random

import pytest
from typer.testing import CliRunner

from workbench.errors import ConfigError
from workbench.pareto import (
    crowded_order,
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated,
    nondominated_ranks,
)

MAX_MIN = ["maximize", "minimize"]


def test_non_dominated_mixed_directions():
    pts = [(0.90, 300), (0.85, 100), (0.80, 200), (0.95, 900), (0.70, 100), (0.90, 300)]
    assert non_dominated(pts, MAX_MIN) == [0, 1, 3, 5]  # equal points do not dominate each other
    assert nondominated_ranks(pts, MAX_MIN) == [0, 0, 1, 0, 1, 0]


def test_non_dominated_matches_brute_force():
    rng = random.Random(0)
    pts = [(rng.random(), rng.random(), rng.random()) for _ in range(60)]
    dirs = ["minimize", "maximize", "minimize"]
    brute = [i for i, p in enumerate(pts)
             if not any(dominates(q, p, dirs) for q in pts)]
    assert non_dominated(pts, dirs) == brute
    ranks = nondominated_ranks(pts, dirs)
    for i, p in enumerate(pts):  # a point of rank r is dominated by some point of rank r-1
        if ranks[i]:
            assert any(ranks[j] == ranks[i] - 1 and dominates(pts[j], p, dirs)
                       for j in range(len(pts)))


def test_crowding_distance_hand_computed():
    # front (0,4) (1,3) (2,1) (4,0); both ranges are 4; extremes are infinite.
    # (1,3): neighbours on obj0 are 0 and 2 -> 2/4; on obj1 they are 1 and 4 -> 3/4
    # (2,1): neighbours on obj0 are 1 and 4 -> 3/4; on obj1 they are 0 and 3 -> 3/4
    pts = [(0, 4), (1, 3), (2, 1), (4, 0)]
    d = crowding_distance(pts)
    assert d[0] == math.inf and d[3] == math.inf
    assert d[1] == pytest.approx(2 / 4 + 3 / 4)
    assert d[2] == pytest.approx(3 / 4 + 3 / 4)


def test_crowded_order_prefers_rank_then_spread():
    pts = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4)]
    order = crowded_order(pts, ["minimize", "minimize"])
    assert order[:3] == [0, 2, 1] and order[3:] == [3, 4]


def test_hypervolume_hand_computed_mixed_directions():
    # maximise accuracy, minimise params, reference (0.5, 10):
    # (0.9, 4): [0.5, 0.9] x [4, 10] = 0.4 * 6 = 2.4
    # (0.7, 2): [0.5, 0.7] x [2, 10] = 0.2 * 8 = 1.6, overlap [0.5, 0.7] x [4, 10] = 1.2
    # union = 2.4 + 1.6 - 1.2 = 2.8; a dominated point and one beyond the reference add nothing
    pts = [(0.9, 4), (0.7, 2), (0.6, 5), (0.95, 12)]
    assert hypervolume(pts, MAX_MIN, (0.5, 10)) == pytest.approx(2.8)
    # normalised: acc over [0.5, 1], params over [0, 10] -> 2.8 / (0.5 * 10)
    assert hypervolume(pts, MAX_MIN, (0.5, 10), bounds=[(0.5, 1.0), (0, 10)]) == \
        pytest.approx(2.8 / 5)
    assert hypervolume([(0.4, 11)], MAX_MIN, (0.5, 10)) == 0.0


def test_hypervolume_three_objectives_unit_cube():
    pts = [(0.5, 0.5, 0.5)]
    assert hypervolume(pts, ["minimize"] * 3, (1, 1, 1)) == pytest.approx(0.125)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="expected direction maximize or minimize for objective 1"):
        non_dominated([(1, 2)], ["maximize", "up"])
    with pytest.raises(ConfigError, match="expected 2 values per point .* found 3 in point 0"):
        non_dominated([(1, 2, 3)], MAX_MIN)


# -- CLI -------------------------------------------------------------------------------------
@pytest.fixture
def cli():
    from workbench.cli import _load_commands, app

    _load_commands()
    return lambda *args: CliRunner().invoke(app, list(args))


def test_searchers_command_lists_every_searcher_with_options(cli):
    from workbench.searchers import SEARCHERS

    out = cli("searchers", "--json")
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert set(rows) == set(SEARCHERS)
    opt = {o["name"]: o for o in rows["nevergrad"]["options"]}
    assert opt["optimizer"] == {"name": "optimizer", "default": "auto", "type": "str",
                                "help": opt["optimizer"]["help"]}
    text = cli("searchers")
    assert "mcts" in text.output and "exploration=0.5 (float)" in text.output
    # each says what to expect against random search; the ones not meant to beat it say so
    assert all(r["versus_random"] for r in rows.values())
    assert rows["hyperband"]["versus_random"].startswith("not meant to beat random")
    assert "vs random: the baseline" in text.output


def test_pareto_command_reads_a_study(cli, tmp_path):
    storage_mod = pytest.importorskip("storage")
    url = f"sqlite:///{tmp_path / 'wb.db'}"
    st = storage_mod.Storage(url)
    st.create_study("s", space="nb201", task="lookup", searcher="random",
                    objectives=[{"name": "val_accuracy", "direction": "maximize"},
                                {"name": "params", "direction": "minimize"}],
                    config={}, seed=0)
    rows = [(0.90, 300), (0.85, 100), (0.80, 200), (0.95, 900), None]
    for i, row in enumerate(rows):
        t = st.create_trial("s", arch_hash=f"h{i}", arch_text=f"arch{i}", arch_decisions=[],
                            space="nb201")
        if row is None:
            st.finish_trial("s", t.number, state="failed", error="boom")
        else:
            st.finish_trial("s", t.number, state="complete",
                            metrics={"val_accuracy": row[0], "params": row[1]})
    out = cli("pareto", "s", "--json", "--storage", url)
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [f["number"] for f in data["front"]] == [0, 1, 3]
    assert data["trials"] == 4
    # normalised over acc [0.80, 0.95], params [100, 900], reference at the worst of each
    expected = hypervolume([(0.90, 300), (0.85, 100), (0.95, 900)], MAX_MIN, (0.80, 900),
                           bounds=[(0.80, 0.95), (100, 900)])
    assert data["hypervolume"] == pytest.approx(expected) and 0 < expected < 1
    text = cli("pareto", "s", "--storage", url)
    assert "3 of 4 complete trials" in text.output and "arch1" in text.output
    missing = cli("pareto", "nope", "--storage", url)
    assert missing.exit_code != 0

"""Property-based: malformed input gets one clear line and exit code 2, never a traceback.

The parser is driven with generated strings (random characters and random bracket trees); the CLI
with generated malformed values for its options, in-process through the real entry point.
"""

from __future__ import annotations

import contextlib
import io
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.spaces import get_space

SPACE = get_space("einspace", (3, 8, 8), 10)
LABELS = st.sampled_from(["sequential", "branching(2)", "routing", "computation", "linear(16)",
                          "relu", "clone(2)", "add", "im2col(3,1,1)", "col2im", "identity",
                          "norm", "cat(1)", "bogus", "linear(x)", "branching(9)", ""])


def trees(depth: int = 4):
    leaf = LABELS
    return st.recursive(leaf, lambda inner: st.tuples(LABELS, st.lists(inner, max_size=4)).map(
        lambda t: f"{t[0]}[{', '.join(t[1])}]"), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(alphabet="[](),. x0123456789abcdilmnopqrstuw_:", max_size=120),
                 trees(), st.integers(1, 3000).map(lambda n: "sequential[" * n + "x" + "]" * n)))
def test_the_parser_answers_malformed_text_with_a_workbench_error(text):
    try:
        arch = SPACE.parse(text)
    except WorkbenchError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert SPACE.parse(arch.text) == arch


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """The real console entry point, in-process: (exit code, stdout, stderr)."""
    from workbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, path = sys.argv, list(sys.path)
    sys.argv = ["workbench", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        # the CLI puts the working directory on sys.path for module:function plug-ins; this
        # process spawns workers later, which must not inherit a test's scratch directory
        sys.argv, sys.path[:] = argv, path
    return code, out.getvalue(), err.getvalue()


def assert_user_error(code: int, err: str, args: list[str]) -> None:
    lines = err.strip().splitlines()
    assert code == 2, f"{args}: exit {code}, stderr {err[-300:]!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{args}: {err[-300:]!r}"
    assert "Traceback" not in err


BAD_INT = st.one_of(st.integers(max_value=0), st.integers(min_value=10**12),
                    st.sampled_from(["x", "2.5", "nan", "inf", "", "-", "1e9999", "0x10"]))
BAD_FLOAT = st.one_of(st.floats(max_value=0, allow_nan=False), st.floats(min_value=1e10),
                      st.sampled_from(["x", "nan", "inf", "-inf", ""]))
BAD_SEED = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63),
                     st.sampled_from(["x", "2.5", "nan", ""]))
BAD_SHAPE = st.sampled_from(["", "0", "-1,8,8", "1,x,8", "99999,99999,99999", "1,2,3,4",
                             "nan", "1,,8"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.tuples(st.sampled_from(["--trials", "--workers", "--classes", "--epochs", "--batch-size",
                               "--trials-per-gpu"]), BAD_INT),
    st.tuples(st.sampled_from(["--timeout", "--max-seconds"]), BAD_FLOAT)))
def test_search_refuses_bad_numbers_with_one_line(tmp_path_factory, case):
    flag, value = case
    db = tmp_path_factory.mktemp("fuzz") / "f.db"
    args = ["search", "--space", "mlp", "--storage", f"sqlite:///{db}", flag, str(value), "-q"]
    if flag == "--classes":
        args += ["--input", "1,8,8", "--evaluator", "tests.evaluators:param_score"]
    code, _, err = run_cli(args)
    assert_user_error(code, err, args)
    if db.exists():  # nothing was left behind
        from storage import Storage

        assert Storage(f"sqlite:///{db}").list_studies() == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BAD_SEED)
def test_search_refuses_bad_seeds(tmp_path_factory, seed):
    db = tmp_path_factory.mktemp("fuzz") / "f.db"
    args = ["search", "--space", "mlp", "--storage", f"sqlite:///{db}", "--seed", str(seed), "-q"]
    code, _, err = run_cli(args)
    assert_user_error(code, err, args)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["population", "sample_size", "crossover_prob", "seeds", "bogus"]),
       st.sampled_from(["-5", "2.5", "inf", "nan", "abc", "1e12", "true", "[1]"]))
def test_searcher_options_are_typed_and_range_checked(tmp_path_factory, key, value):
    db = tmp_path_factory.mktemp("fuzz") / "f.db"
    args = ["search", "--space", "mlp", "--searcher", "evolution", "--searcher-opt",
            f"{key}={value}", "--storage", f"sqlite:///{db}", "-q"]
    code, _, err = run_cli(args)
    assert_user_error(code, err, args)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BAD_SHAPE, st.one_of(trees(), st.text(max_size=40)))
def test_info_answers_malformed_shapes_and_architectures(shape, arch):
    args = ["info", arch or "x", "--space", "einspace", "--input", shape]
    code, _, err = run_cli(args)
    assert_user_error(code, err, args)


@pytest.mark.parametrize("args", [
    ["studies", "--storage", "sqlite:////nonexistent/typo.db"],
    ["trials", "s", "--storage", "sqlite:////nonexistent/typo.db"],
    ["show", "s", "1", "--storage", "sqlite:////nonexistent/typo.db"],
    ["export", "--study", "s", "--trial", "1", "--format", "json", "--out", "/tmp/x.json",
     "--storage", "sqlite:////nonexistent/typo.db"],
    ["search", "--space", "mlp", "--evaluator", "tests.evaluators:nope"],
    ["search", "--space", "mlp", "--evaluator", "this:s"],
    ["search", "--space", "mlp", "--evaluator", "userpkg.broken_module:f"],
    ["search", "--space", "mlp", "--device", "tpu:3"],
    ["search", "--space", "mlp", "--input", "1,8,8"],
    ["search", "--space", "nomodule_xyz:make_space"],
    ["search", "--space", "mlp", "--executor", "inline", "--timeout", "5"],
    ["search", "--space", "mlp", "--searcher", "mcts", "--searcher-opt", "exploration=inf"],
    ["nope"],
    ["info", "resnet18", "--classes", "x"],
])
def test_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("")
    (tmp_path / "userpkg" / "broken_module.py").write_text("def f(:\n")  # a SyntaxError
    code, _, err = run_cli(args + (["--storage", f"sqlite:///{tmp_path / 'e.db'}"]
                                   if args[0] == "search" else []))
    assert_user_error(code, err, args)
    assert not (tmp_path / "nonexistent").exists()

"""A seeded corpus of bad inputs to the CLI: every one must be one line on stderr and exit code 2.

Prints one table: inputs run, tracebacks, exits other than 2, answers longer than one line,
hangs (over 60 s), per kind of input. Runs the real entry point in-process (so a few hundred
inputs take a minute or two, not an interpreter start each).

    python benchmarks/fuzz_corpus.py [--n 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAD_NUMBERS = ["0", "-1", "-5", "2.5", "nan", "inf", "-inf", "", "x", "1e9999", "99999999999999",
               "0x10", "1,2", "None", "true"]
BAD_SHAPES = ["", "0", "-1,8,8", "1,x,8", "99999,99999,99999", "1,2,3,4", "nan", "1,,8", "3x"]
BAD_ARCHS = ["", "[", "]", "sequential[", "sequential[computation[linear(16)]",
             "computation[linear(x)]", "branching(9)[clone(9), a, b, add]", "bogus[x]",
             "sequential[" * 2000 + "x" + "]" * 2000, "routing[im2col(99,1,1), c, col2im]",
             "sequential[computation[linear(16)], computation[relu]]]"]


def corpus(n: int, rng: random.Random, tmp: Path) -> list[tuple[str, list[str]]]:
    db = f"sqlite:///{tmp / 'fuzz.db'}"
    missing = f"sqlite:///{tmp / 'nope' / 'missing.db'}"
    files = {"empty": "", "truncated": '{"space": "einspace", "inp', "list": "[1, 2]",
             "types": '{"space": 3, "input_shape": "x", "num_classes": 10, "decisions": 5}',
             "bom": "\ufeff{}"}
    paths = []
    for name, text in files.items():
        p = tmp / f"{name}.json"
        p.write_text(text, encoding="utf-8")
        paths.append(str(p))
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    paths.append(str(tmp / "binary.json"))
    flags_int = ["--trials", "--workers", "--epochs", "--batch-size", "--trials-per-gpu",
                 "--steps", "--repeats"]
    flags_float = ["--timeout", "--max-seconds"]
    out: list[tuple[str, list[str]]] = []
    for _ in range(n):
        kind = rng.choice(["search-number", "search-option", "search-plugin", "info-arch",
                           "info-file", "info-shape", "read-missing", "search-seed"])
        if kind == "search-number":
            flag = rng.choice(flags_int + flags_float)
            value = rng.choice(BAD_NUMBERS)
            if flag in flags_float and value in ("2.5", "99999999999999", "0x10"):
                value = "-3"
            args = ["search", "--space", "mlp", flag, value]
        elif kind == "search-seed":
            args = ["search", "--space", "mlp", "--seed", rng.choice(["-1", "2.5", "x", str(2**64)])]
        elif kind == "search-option":
            searcher, key = rng.choice([("evolution", "population"), ("evolution", "sample_size"),
                                        ("evolution", "crossover_prob"), ("mcts", "exploration"),
                                        ("tpe", "n_startup_trials"), ("random", "bogus"),
                                        ("evolution", "seeds")])
            value = rng.choice(["-5", "2.5", "inf", "nan", "abc", "1e12", "[1]", "{}"])
            if key == "exploration" and value == "2.5":
                value = "-2.5"  # 2.5 is a meaningful exploration constant
            if key == "seeds":
                value = "not_a_seed"
            args = ["search", "--space", "mlp", "--searcher", searcher, "--searcher-opt",
                    f"{key}={value}"]
        elif kind == "search-plugin":
            args = ["search", "--space", "mlp", rng.choice([
                "--evaluator=this:s", "--evaluator=nomod_xyz:f", "--evaluator=json",
                "--evaluator=json:nothere", "--device=tpu:3", "--device=cuda:7", "--input=1,8,8",
                "--classes=3", "--executor=nope", "--objectives=bogus", "--keep-weights=some",
                "--space=nomod_xyz:make", "--task=imagenet", "--task=folder:/nonexistent"])]
        elif kind == "info-arch":
            args = ["info", rng.choice(BAD_ARCHS), "--space", "einspace", "--input", "3,8,8"]
        elif kind == "info-file":
            args = ["info", rng.choice(paths), "--space", "mlp", "--input", "1,8,8"]
        elif kind == "info-shape":
            args = ["info", "resnet18", "--space", "einspace", "--input", rng.choice(BAD_SHAPES)]
        else:
            args = rng.choice([["studies"], ["trials", "s"], ["show", "s", "1"],
                               ["export", "--study", "s", "--trial", "1", "--format", "json",
                                "--out", str(tmp / "o.json")]]) + ["--storage", missing]
        if args[0] == "search":
            args += ["--storage", db, "-q", "--trials", "2"] if "--trials" not in args else [
                "--storage", db, "-q"]
        out.append((kind, args))
    return out


class Hang(Exception):
    pass


def run(args: list[str], timeout: int = 60) -> tuple[int | None, str]:
    from workbench.cli import main

    err, argv = io.StringIO(), sys.argv
    sys.argv = ["workbench", *args]

    def alarm(*_):
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    code: int | None = 0
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        code = None
    except BaseException as exc:  # noqa: BLE001 - a traceback is what we count
        err.write(f"Traceback (most recent call last):\n{type(exc).__name__}: {exc}\n")
        code = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv = argv
    return code, err.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    os.chdir(ROOT)  # tests.evaluators importable, like a user running from their project
    with tempfile.TemporaryDirectory() as tmp:
        cases = corpus(opts.n, random.Random(opts.seed), Path(tmp))
        counts: dict[str, Counter] = defaultdict(Counter)
        bad: list[str] = []
        for kind, args in cases:
            code, err = run(args)
            c = counts[kind]
            c["inputs"] += 1
            lines = err.strip().splitlines()
            c["tracebacks"] += "Traceback" in err
            c["hangs"] += code is None
            c["exit not 2"] += code is not None and code != 2
            c["not one line"] += len(lines) != 1
            if code != 2 or len(lines) != 1 or "Traceback" in err:
                bad.append(f"{kind}: {' '.join(args)[:120]} -> exit {code}: {err.strip()[:160]}")
    cols = ["inputs", "tracebacks", "exit not 2", "not one line", "hangs"]
    print(f"| kind | {' | '.join(cols)} |")
    print("|---|" + "---|" * len(cols))
    total: Counter = Counter()
    for kind in sorted(counts):
        total.update(counts[kind])
        print(f"| {kind} | " + " | ".join(str(counts[kind][c]) for c in cols) + " |")
    print("| **all** | " + " | ".join(str(total[c]) for c in cols) + " |")
    for line in bad[:20]:
        print("  " + line)


if __name__ == "__main__":
    main()

"""Core benchmark: sampling, mutation and compile speed of einspace, and the compiled resnet18
seed against a hand-written PyTorch ResNet-18 of the same structure (forward + backward).

    python benchmarks/core_bench.py [--samples 2000] [--batch 32] [--input 3,32,32]

Prints a table. Targets: a sample in a few milliseconds; compiled / hand-written <= 1.05.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.reference import ResNet18  # noqa: E402
from workbench.compiler import compile_model  # noqa: E402
from workbench.metrics import count_params  # noqa: E402
from workbench.spaces import get_space  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def time_train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reps: int) -> float:
    """Median seconds of one forward + backward + SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    times = []
    for i in range(reps + 2):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input", default="3,32,32")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.input.split(","))
    space = get_space("einspace", shape, 10)

    rng = random.Random(0)
    sample_ms, archs = [], []
    t0 = time.perf_counter()
    for _ in range(args.samples):
        t = time.perf_counter()
        archs.append(space.sample(rng))
        sample_ms.append(1000 * (time.perf_counter() - t))
    rate = args.samples / (time.perf_counter() - t0)

    mut_ms = []
    for i, a in enumerate(archs[:500]):
        t = time.perf_counter()
        space.mutate(a, random.Random(i))
        mut_ms.append(1000 * (time.perf_counter() - t))

    compile_ms, params = [], []
    for i, a in enumerate(archs[:300]):
        t = time.perf_counter()
        m = compile_model(a, seed=i)
        compile_ms.append(1000 * (time.perf_counter() - t))
        params.append(count_params(m.backbone))
    nodes = [a.nodes for a in archs]

    r18 = space.seed("resnet18")
    t = time.perf_counter()
    compiled = compile_model(r18, seed=0)
    r18_compile_ms = 1000 * (time.perf_counter() - t)
    hand = ResNet18(shape[0], 10)
    x = torch.randn(args.batch, *shape)
    y = torch.randint(0, 10, (args.batch,))
    # interleave to share machine noise between the two
    tc, th = [], []
    for _ in range(3):
        tc.append(time_train_step(compiled, x, y, args.reps))
        th.append(time_train_step(hand, x, y, args.reps))
    t_comp, t_hand = min(tc), min(th)

    table = Table(title=f"einspace core benchmark (input {shape}, torch {torch.__version__}, "
                        f"{torch.get_num_threads()} threads)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("valid samples / s", f"{rate:,.0f}"),
        ("ms per sample: median / p90 / max",
         f"{statistics.median(sample_ms):.2f} / {pct(sample_ms, .9):.2f} / {max(sample_ms):.1f}"),
        ("nodes: median / p90 / max",
         f"{statistics.median(nodes):.0f} / {pct(nodes, .9):.0f} / {max(nodes)}"),
        ("backbone params: median / p90 / max (300 samples)",
         f"{statistics.median(params):,.0f} / {pct(params, .9):,.0f} / {max(params):,}"),
        ("ms per mutation: median / p90",
         f"{statistics.median(mut_ms):.2f} / {pct(mut_ms, .9):.2f}"),
        ("ms per compile: median / p90",
         f"{statistics.median(compile_ms):.2f} / {pct(compile_ms, .9):.2f}"),
        ("resnet18 parse+compile ms", f"{r18_compile_ms:.1f}"),
        (f"resnet18 fwd+bwd ms, batch {args.batch}: compiled", f"{1000 * t_comp:.1f}"),
        (f"resnet18 fwd+bwd ms, batch {args.batch}: hand-written", f"{1000 * t_hand:.1f}"),
        ("compiled / hand-written (target <= 1.05)", f"{t_comp / t_hand:.3f}"),
    ]
    for r in rows:
        table.add_row(*r)
    Console().print(table)


if __name__ == "__main__":
    main()

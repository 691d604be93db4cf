"""Rank fidelity: how well a short training budget ranks architectures like a longer one does.

On each built-in task, a fixed, seeded set of architectures (the einspace seeds that apply to
the task's input shape, then random einspace samples and random quickstart samples) is trained
at 1x, 3x and 9x a base budget; for the 1x and 3x budgets the table gives Kendall's tau and
Spearman's rho of the validation accuracies against those of the 9x budget (the longest), with
the wall time each budget took. It also gives the spread of the 9x scores (how far apart the task
puts the architectures): a task on which everything ties cannot rank anything. Failed trials
are left out of the correlations and counted.

The defaults fit a shared 2-core CPU (about 10 minutes): base 50 optimizer steps at batch 32,
every architecture capped at 300k parameters and 30 MFLOPs, which leaves the einspace seeds
(2.1-11M parameters, 70-90 MFLOPs) out: on a shared CPU each of them takes minutes per budget.
``--all-seeds`` puts them in (the caps then apply to the random samples only). The budget the CLI uses by default is 5 epochs
(250 steps at batch 128 on digits and mnist1d); ``--base-steps 250 --batch-size 128`` measures
that (hours on a CPU, minutes on a GPU):

    .venv/bin/python benchmarks/rank_fidelity.py                       # the quick default
    .venv/bin/python benchmarks/rank_fidelity.py --all-seeds --n 40
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import kendalltau, spearmanr  # noqa: E402

from workbench.budget import Budget  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.metrics import static_metrics  # noqa: E402
from workbench.spaces import get_space  # noqa: E402
from workbench.tasks import get_task  # noqa: E402
from workbench.trainer import evaluate  # noqa: E402

FACTORS = (1, 3, 9)


def architectures(shape, classes, n: int, seed: int, max_params: int, max_flops: int,
                  skipped: list | None = None, cap_seeds: bool = True) -> list:
    """``[(label, arch)]``: the einspace seeds valid for ``shape``, then random einspace samples
    and quickstart samples, ``n`` in all, distinct, from ``random.Random(seed)``. Seeds and
    einspace samples over the caps (0: no cap) are left out; seeds left out go to ``skipped``."""
    ein = get_space("einspace", shape, classes)
    out, seen = [], set()

    def fits(arch) -> tuple[bool, dict]:
        m = static_metrics(arch)
        return ((not max_params or m["params_total"] <= max_params)
                and (not max_flops or m["flops"] <= max_flops)), m

    def add(label, arch) -> None:
        if arch.hash not in seen:
            seen.add(arch.hash)
            out.append((label, arch))

    for name in ein.seeds():
        try:
            arch = ein.seed(name)
        except WorkbenchError:  # e.g. ViT/Mixer's 4x4 patches on a 1-row input
            (skipped if skipped is not None else []).append(f"{name} (does not apply)")
            continue
        ok, m = fits(arch)
        if ok or not cap_seeds:
            add(name, arch)
        elif skipped is not None:
            skipped.append(f"{name} ({m['params_total'] / 1e6:.1f}M params, "
                           f"{m['flops'] / 1e6:.0f} MFLOPs: over the caps)")
    rng = random.Random(seed)
    quick = get_space("quickstart", shape, classes)
    want = len(out) + (n - len(out) + 1) // 2  # half the rest from einspace, half quickstart
    for _ in range(2000):
        if len(out) >= want:
            break
        arch = ein.sample(rng)
        if fits(arch)[0]:
            add(f"einspace#{len(out)}", arch)
    for _ in range(2000):
        if len(out) >= n:
            break
        add(f"quickstart#{len(out)}", quick.sample(rng))
    return out


def run_task(task_name: str, args) -> dict:
    task = get_task(task_name, seed=0)
    skipped: list[str] = []
    archs = architectures(task.input_shape, task.num_classes, args.n, args.seed, args.max_params,
                          args.max_flops, skipped, cap_seeds=not args.all_seeds)
    scores: dict[int, list] = {}
    seconds: dict[int, float] = {}
    for f in FACTORS:
        budget = Budget(steps=args.base_steps * f, batch_size=args.batch_size)
        t0 = time.perf_counter()
        scores[f] = []
        for i, (_, arch) in enumerate(archs):
            res = evaluate(arch, task, budget, device="cpu", seed=args.seed * 1000 + i)
            scores[f].append(res.metrics.get("val_accuracy") if res.ok else None)
        seconds[f] = time.perf_counter() - t0
        print(f"  {task_name} {f}x ({args.base_steps * f} steps): {seconds[f]:.0f}s",
              file=sys.stderr, flush=True)
    longest = FACTORS[-1]
    rows = {}
    for f in FACTORS:
        pairs = [(a, b) for a, b in zip(scores[f], scores[longest]) if a is not None and b is not None]
        xs, ys = zip(*pairs) if pairs else ((), ())
        tau = kendalltau(xs, ys).statistic if f != longest and len(pairs) > 2 else 1.0
        rho = spearmanr(xs, ys).statistic if f != longest and len(pairs) > 2 else 1.0
        ok = [s for s in scores[f] if s is not None]
        rows[f] = {"steps": args.base_steps * f, "tau": tau, "rho": rho, "seconds": seconds[f],
                   "failed": sum(s is None for s in scores[f]), "min": min(ok, default=None),
                   "max": max(ok, default=None),
                   "median": sorted(ok)[len(ok) // 2] if ok else None}
    return {"task": task_name, "skipped": skipped, "architectures": [(label, a.text) for label, a in archs],
            "scores": {str(f): scores[f] for f in FACTORS}, "rows": rows}


def fmt(v, spec: str) -> str:
    return "-" if v is None or v != v else format(v, spec)  # v != v: NaN (all scores tied)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", default="mnist1d,digits")
    ap.add_argument("--n", type=int, default=30, help="architectures per task (>= 30)")
    ap.add_argument("--base-steps", type=int, default=50, help="the 1x budget, optimizer steps")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-params", type=int, default=300_000, help="cap per architecture "
                    "(0: none)")
    ap.add_argument("--max-flops", type=int, default=30_000_000, help="cap per architecture, one "
                    "input (0: none; the einspace seeds need 70-90 MFLOPs)")
    ap.add_argument("--all-seeds", action="store_true", help="every einspace seed that applies, "
                    "whatever the caps (minutes per seed and budget on a CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default; "
                    "1 is fastest on a shared CPU)")
    ap.add_argument("--json", type=Path, help="also write every score here")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = []
    for name in args.tasks.split(","):
        results.append(run_task(name.strip(), args))
    print(f"rank fidelity vs the {FACTORS[-1]}x budget; {args.n} architectures per task, batch "
          f"{args.batch_size}, seed {args.seed}\n")
    print("| task | budget | steps | Kendall tau | Spearman rho | wall time | failed "
          "| val acc min / median / max |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for f, row in r["rows"].items():
            print(f"| {r['task']} | {f}x | {row['steps']} | {fmt(row['tau'], '.3f')} | "
                  f"{fmt(row['rho'], '.3f')} | {row['seconds']:.0f} s | {row['failed']} | "
                  f"{fmt(row['min'], '.3f')} / {fmt(row['median'], '.3f')} / "
                  f"{fmt(row['max'], '.3f')} |")
    for r in results:
        if r["skipped"]:
            print(f"\n{r['task']}: left out {', '.join(r['skipped'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()

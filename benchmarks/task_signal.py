"""Which built-in task separates architectures? The einspace seeds, the quickstart seed and an
MLP, each trained for the same wall time on every task, scored on validation and test accuracy.

Each candidate's step time is measured on a short calibration run, then it trains for as many
optimizer steps as fit ``--seconds`` (so big and small networks, and big and small inputs, get
the same time, with the warm-up + cosine recipe planned over those steps). einspace's ViT and
Mixer seeds cut 4x4 patches and do not apply to mnist1d's 1x40 input.

    .venv/bin/python benchmarks/task_signal.py --seconds 45
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.budget import Budget  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.spaces import get_space  # noqa: E402
from workbench.tasks import get_task  # noqa: E402
from workbench.trainer import evaluate  # noqa: E402

MLP = ("mlp[flatten, stack[block[linear(256), relu, identity], "
       "last[block[linear(256), relu, identity]]]]")
CANDIDATES = (("einspace", "resnet18"), ("einspace", "wrn16_4"), ("einspace", "vit"),
              ("einspace", "mixer"), ("quickstart", "small"), ("mlp", MLP))


def candidate(space_name: str, what: str, task):
    space = get_space(space_name, task.input_shape, task.num_classes)
    return space.resolve(what)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", default="mnist1d,digits")
    ap.add_argument("--seconds", type=float, default=45.0, help="training time per candidate")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    for task_name in args.tasks.split(","):
        task = get_task(task_name.strip(), seed=0)
        for space_name, what in CANDIDATES:
            label = what if space_name != "mlp" else "mlp 2x256"
            try:
                arch = candidate(space_name, what, task)
            except WorkbenchError as exc:
                rows.append((task.name, label, None, None, None, None, str(exc)[:60]))
                continue
            probe = evaluate(arch, task, Budget(steps=6, batch_size=args.batch_size, warmup=0),
                             device="cpu", seed=args.seed)
            step_s = sum(p["seconds"] for p in probe.curve) / max(probe.metrics["steps"], 1)
            steps = max(10, int(args.seconds / step_s))
            t0 = time.perf_counter()
            res = evaluate(arch, task, Budget(steps=steps, batch_size=args.batch_size),
                           device="cpu", seed=args.seed)
            wall = time.perf_counter() - t0
            m = res.metrics
            rows.append((task.name, label, m.get("val_accuracy"), m.get("test_accuracy"), steps,
                         wall, res.error or ""))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    print(f"equal wall time per candidate: {args.seconds:.0f} s of training, batch "
          f"{args.batch_size}\n")
    print("| task | candidate | val acc | test acc | steps | wall time | note |")
    print("|---|---|---|---|---|---|---|")
    for t, label, val, test, steps, wall, note in rows:
        cells = ["-" if v is None else f"{v:.3f}" for v in (val, test)]
        print(f"| {t} | {label} | {cells[0]} | {cells[1]} | {steps or '-'} | "
              f"{'-' if wall is None else f'{wall:.0f} s'} | {note} |")


if __name__ == "__main__":
    main()

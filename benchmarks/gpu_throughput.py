"""GPU throughput benchmark: candidates per hour and GPU busy fraction with K trials per GPU, and
the compiled resnet18 seed against the hand-written ResNet-18 (training images per second).

    python benchmarks/gpu_throughput.py            # full size on a GPU, --small without one
    python benchmarks/gpu_throughput.py --small --trials-per-gpu 1,2 [--torch-compile]

Candidates: (a) the four einspace seeds (resnet18, wrn16_4, vit, mixer) and (b) random einspace
samples (seeded; samples over a FLOP cap are skipped, as a study constraint would) on
``synthetic-cifar`` (3x32x32, 10 classes; 10,000 images, 300 with --small). Workers are started
and the task loaded on each before the clock starts, so the rates are a running study's steady
state. The busy fraction is NVML's utilisation averaged over the timed part ("n/a" without NVML,
i.e. on CPU). Runs on CPU in well under 5 minutes with --small.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.reference import ResNet18  # noqa: E402
from workbench.compiler import compile_model  # noqa: E402
from workbench.devices import (  # noqa: E402
    configure_cuda,
    precision_name,
    select_device,
    select_precision,
    synchronize,
)
from workbench.executors import ProcessExecutor, plan_slots  # noqa: E402
from workbench.gpu import GpuSampler  # noqa: E402
from workbench.jobs import Job  # noqa: E402
from workbench.metrics import count_flops  # noqa: E402
from workbench.spaces import get_space  # noqa: E402

SHAPE, CLASSES = (3, 32, 32), 10
WARMUP = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"


def make_job(number: int, arch, args, task_options: dict, budget: dict) -> Job:
    return Job(study="gpu-bench", number=number, space="einspace", space_options={},
               input_shape=SHAPE, num_classes=CLASSES,
               decisions=[[d.path, d.choice] for d in arch.decisions], task="synthetic-cifar",
               task_options=task_options, budget=budget, seed=number, device=args.device,
               amp=args.amp)


def candidates(args) -> dict[str, list]:
    space = get_space("einspace", SHAPE, CLASSES)
    seeds = [space.seed(name) for name in ("resnet18", "wrn16_4", "vit", "mixer")]
    rng, sampled = random.Random(0), []
    while len(sampled) < args.random:
        arch = space.sample(rng)
        if count_flops(compile_model(arch), SHAPE) <= args.max_flops:
            sampled.append(arch)
    return {"seeds": seeds, "random": sampled}


def run_config(k: int, sets: dict[str, list], args, task_options: dict, budget: dict) -> list:
    """Rows (set, candidates, complete, failed, seconds, per hour, busy) for K trials per GPU."""
    ex = ProcessExecutor(devices=[args.device_name], trials_per_gpu=k)
    gpus = sorted({int(d.partition(":")[2] or 0) for d in ex.devices if d.startswith("cuda")})
    rows, number = [], 0
    try:
        ex.start()
        # one small job per slot: loads the task (and its device copy) into every worker
        warm = get_space("einspace", SHAPE, CLASSES).parse(WARMUP)
        for _ in range(ex.slots):
            ex.submit(make_job(number, warm, args, task_options, {**budget, "max_steps": 1}))
            number += 1
        done = 0
        while done < ex.slots:
            done += len(ex.wait(1.0))
        for name, archs in sets.items():
            pending = [make_job(number + i, a, args, task_options, budget)
                       for i, a in enumerate(archs)]
            number += len(archs)
            outcomes = []
            with GpuSampler(gpus) as sampler:
                t0 = time.perf_counter()
                while len(outcomes) < len(archs):
                    while pending and ex.free_slots():
                        ex.submit(pending.pop(0))
                    outcomes += [o for _, o in ex.wait(0.5)]
                seconds = time.perf_counter() - t0
            busy = sampler.busy_fraction()
            ok = sum(o.state == "complete" for o in outcomes)
            rows.append((name, len(archs), ok, len(archs) - ok, seconds,
                         3600 * len(archs) / seconds,
                         "n/a" if busy is None else f"{100 * busy:.0f}%"))
    finally:
        ex.shutdown()
    return rows


def images_per_second(model: torch.nn.Module, dev: torch.device, dtype: torch.dtype, batch: int,
                      steps: int) -> float:
    """Training images per second: AdamW (fused on CUDA), autocast, channels-last on CUDA, the
    settings of workbench.trainer."""
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.preserve_format
    model = model.to(dev, memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=cuda or None)
    x = torch.randn(batch, *SHAPE, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, CLASSES, (batch,), device=dev)
    for i in range(steps + 2):
        if i == 2:  # after warm-up (cuDNN autotuning, torch.compile)
            synchronize(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(dev)
    return steps * batch / (time.perf_counter() - t0)


def resnet_rows(args, dev: torch.device, dtype: torch.dtype) -> list[tuple[str, str]]:
    space = get_space("einspace", SHAPE, CLASSES)
    models = {"einspace resnet18 (compiled)": lambda: compile_model(space.seed("resnet18")),
              "hand-written ResNet-18": lambda: ResNet18(SHAPE[0], CLASSES)}
    if args.torch_compile:
        models.update({f"{name} + torch.compile": (lambda make=make: torch.compile(make()))
                       for name, make in list(models.items())})
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.resnet_rounds):  # interleaved rounds share the machine's noise
        for name, make in models.items():
            rates[name].append(images_per_second(make(), dev, dtype, args.batch, args.steps))
    best = {name: max(r) for name, r in rates.items()}
    rows = [(f"{name}: train images/s", f"{v:,.0f}") for name, v in best.items()]
    ratio = best["einspace resnet18 (compiled)"] / best["hand-written ResNet-18"]
    rows.append(("compiled / hand-written throughput (1.0 = same speed)", f"{ratio:.3f}"))
    if args.torch_compile:
        gain = best["einspace resnet18 (compiled) + torch.compile"] / \
            best["einspace resnet18 (compiled)"]
        rows.append(("torch.compile speed-up of the compiled resnet18", f"{gain:.2f}x"))
    return rows


def main() -> None:
    gpu = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action=argparse.BooleanOptionalAction, default=not gpu,
                    help="CPU-sized run (default without a GPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--trials-per-gpu", default=None, help="comma list, e.g. 1,2,4,8")
    ap.add_argument("--random", type=int, default=None, help="random samples per configuration")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--torch-compile", action="store_true", help="also torch.compile resnet18s")
    args = ap.parse_args()
    dev = select_device(args.device)
    args.device_name = str(dev) if dev.type != "cuda" else f"cuda:{dev.index}"
    dtype = select_precision(args.amp, dev)
    if dev.type == "cuda":
        configure_cuda()
    small = args.small
    ks = [int(v) for v in (args.trials_per_gpu or ("1,2" if small else "1,2,4,8")).split(",")]
    args.random = args.random if args.random is not None else (4 if small else 12)
    args.max_flops = 5e7 if small else 2e9
    args.batch, args.steps, args.resnet_rounds = (8, 2, 2) if small else (256, 20, 3)
    task_options = {"n": 300 if small else 10_000}
    budget = {"epochs": args.epochs, "batch_size": 16 if small else 256}
    if small:
        budget["max_steps"] = 2  # a CPU trains a seed for seconds, not minutes
    sets = candidates(args)

    console = Console()
    title = (f"GPU throughput ({'small, ' if small else ''}{args.device_name}, "
             f"{precision_name(dtype)}, torch {torch.__version__}, "
             f"{task_options['n']:,} images, budget {budget})")
    table = Table(title=title)
    for col in ("trials/device", "candidates", "n", "complete", "failed", "seconds",
                "candidates / h", "GPU busy"):
        table.add_column(col, justify="right")
    for k in ks:
        if len(plan_slots([args.device_name], k)) != k:
            raise SystemExit(f"cannot plan {k} slots on {args.device_name}")
        for name, n, ok, bad, seconds, per_hour, busy in run_config(k, sets, args, task_options,
                                                                     budget):
            table.add_row(str(k), name, str(n), str(ok), str(bad), f"{seconds:.1f}",
                          f"{per_hour:,.0f}", busy)
    console.print(table)

    res = Table(title=f"resnet18 training throughput on {args.device_name} "
                      f"(batch {args.batch}, {precision_name(dtype)}, best of "
                      f"{args.resnet_rounds} interleaved rounds of {args.steps} steps)")
    res.add_column("measure")
    res.add_column("value", justify="right")
    for row in resnet_rows(args, dev, dtype):
        res.add_row(*row)
    console.print(res)
    if not GpuSampler([0]).available:
        console.print("GPU busy: n/a (no NVML: no NVIDIA driver, or nvidia-ml-py missing and "
                      "libnvidia-ml.so.1 not found)")


if __name__ == "__main__":
    main()

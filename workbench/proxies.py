"""Zero-cost proxies: scores of an untrained network on one minibatch that rank architectures.

``compute_proxies(arch, batch, seed)`` compiles ``arch`` with weights initialised from ``seed`` and
returns, in about a second per candidate on a CPU:

* ``synflow`` -- Tanaka et al. 2020 / Abdelfattah et al. 2021: with every weight replaced by its
  absolute value, in double precision and with batch-norm in evaluation mode, the sum over
  parameters of ``|theta * dR/dtheta|`` where ``R`` is the sum of the network's output on an
  all-ones input of one sample (data-independent); reported as log(1 + score).
* ``naswot`` -- Mellor et al. 2021: the binary activation pattern of every ReLU over the batch gives
  a kernel ``K[i, j]`` = number of units on which samples i and j agree; the score is
  ``log |det K|``.
* ``snip`` -- Lee et al. 2019: ``sum |theta * dL/dtheta|`` over conv and linear weights for the
  cross-entropy loss on the batch.
* ``grad_norm`` -- Abdelfattah et al. 2021: the sum over conv and linear weights of the L2 norm of
  ``dL/dtheta``.

Higher is better for every proxy. Everything is seeded (weights from ``seed``; the batch is the
caller's) and runs under ``torch.random.fork_rng``, so the global generator is untouched and the
same call gives the same numbers. A network that cannot be scored (no ReLU for ``naswot``, no
weights for the gradient proxies) gets ``-inf`` for that proxy.

:func:`prefilter` implements the ``--prefilter naswot:top0.25`` semantics: of a pool of candidate
architectures, keep the best fraction by one proxy.

>>> import random, torch
>>> from workbench.spaces import get_space
>>> space = get_space("nb201", (3, 8, 8), 10, channels=4, cells_per_stage=1)
>>> arch = space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
>>> batch = synthetic_batch((3, 8, 8), 10, 8, seed=0)
>>> scores = compute_proxies(arch, batch, seed=0)
>>> sorted(scores) == sorted(PROXIES) and scores == compute_proxies(arch, batch, seed=0)
True
>>> spec = parse_prefilter("naswot:top0.5")
>>> spec
PrefilterSpec(proxy='naswot', fraction=0.5)
>>> pool = [space.sample(random.Random(i)) for i in range(4)]
>>> len(prefilter(pool, spec, batch, seed=0))
2
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.architecture import Architecture
from workbench.errors import ConfigError

log = logging.getLogger(__name__)
PROXIES = ("synflow", "naswot", "snip", "grad_norm")
BATCH_SIZE = 32  # inputs in the minibatch a study scores its candidates on
WHY_NOT_FINITE = "no ReLU for naswot, no trainable weights for the others"


def parse_proxies(names, flag: str = "--proxies") -> tuple[str, ...]:
    """``"synflow,naswot"`` (or a sequence of names) -> ``("synflow", "naswot")``, checked.

    >>> parse_proxies("naswot, synflow")
    ('naswot', 'synflow')
    >>> parse_proxies("naswot,zen")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: --proxies: expected names among synflow, naswot, snip, grad_norm, found 'zen'
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name == "":
            continue
        if name not in PROXIES:
            raise ConfigError(f"{flag}: expected names among {', '.join(PROXIES)}, found {name!r}")
        if name not in out:
            out.append(name)
    return tuple(out)


def task_batch(task, size: int = BATCH_SIZE, *, seed: int = 0):
    """One minibatch ``(x, y)`` of ``task``'s training split: ``size`` examples (at most all of
    them) drawn without replacement by a generator seeded with ``seed``."""
    import torch

    n = len(task.y_train)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:min(size, n)]
    return task.x_train[idx].cpu(), task.y_train[idx].cpu()


def measure(arch: Architecture, batch, seed: int, which: Sequence[str]) -> dict[str, float | None]:
    """:func:`compute_proxies`, with what cannot be scored as ``None`` (a value that is not
    finite, or a proxy that raised: logged) -- what a study stores as metrics."""
    try:
        values = compute_proxies(arch, batch, seed, which)
    except ConfigError:
        raise
    except Exception as exc:  # a candidate the proxies cannot run (the trainer will say why)
        log.info("zero-cost proxies of %s failed: %s", arch.hash, exc)
        values = {w: math.nan for w in which}
    return {k: v if math.isfinite(v) else None for k, v in values.items()}


def synthetic_batch(input_shape, num_classes: int, size: int = 32, *, seed: int = 0):
    """A seeded standard-normal batch ``(x, y)`` of ``size`` inputs of ``input_shape``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(size, *input_shape, generator=gen)
    y = torch.randint(0, num_classes, (size,), generator=gen)
    return x, y


def compute_proxies(arch: Architecture, batch, seed: int = 0,
                    which: Sequence[str] = PROXIES) -> dict[str, float]:
    """The zero-cost proxies ``which`` of ``arch`` at initialisation on ``batch = (x, y)``."""
    import torch

    unknown = [w for w in which if w not in PROXIES]
    if unknown:
        raise ConfigError(f"zero-cost proxies: expected some of {', '.join(PROXIES)}, found "
                          f"{unknown}")
    x, y = batch
    out: dict[str, float] = {}
    with torch.random.fork_rng(devices=[]):
        if "naswot" in which:
            out["naswot"] = _naswot(_model(arch, seed), x)
        if "snip" in which or "grad_norm" in which:
            out.update({k: v for k, v in _gradient_proxies(_model(arch, seed), x, y).items()
                        if k in which})
        if "synflow" in which:
            out["synflow"] = _synflow(_model(arch, seed), x)
    return {k: out[k] for k in which}


def _model(arch: Architecture, seed: int):
    from workbench.compiler import compile_model

    return compile_model(arch, seed=seed)


def _weights(model):
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and m.weight is not None:
            yield m.weight


def _naswot(model, x) -> float:
    import torch
    from torch import nn

    n = x.shape[0]
    K = torch.zeros(n, n, dtype=torch.float64)
    hooks = []

    def hook(_module, inputs, _output):
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        K.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    for m in model.modules():
        if isinstance(m, nn.ReLU):
            hooks.append(m.register_forward_hook(hook))
    if not hooks:
        return -math.inf
    model.train()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    sign, logdet = torch.linalg.slogdet(K)
    return float(logdet) if sign != 0 else -math.inf


def _gradient_proxies(model, x, y) -> dict[str, float]:
    import torch

    model.train()
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    snip = grad_norm = 0.0
    seen = False
    for w in _weights(model):
        if w.grad is None:
            continue
        seen = True
        snip += float((w.grad * w.detach()).abs().sum())
        grad_norm += float(w.grad.norm())
    if not seen:
        return {"snip": -math.inf, "grad_norm": -math.inf}
    return {"snip": snip, "grad_norm": grad_norm}


def _synflow(model, x) -> float:
    import torch

    model = model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            p.abs_()
    model.zero_grad()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    model(ones).sum().backward()
    score = 0.0
    seen = False
    for p in model.parameters():
        if p.grad is not None:
            seen = True
            score += float((p.detach() * p.grad).abs().sum())
    return math.log1p(score) if seen else -math.inf


# -- pre-filter --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrefilterSpec:
    """``proxy:topF``: keep the best fraction ``F`` (0 < F <= 1) of a pool by ``proxy``."""

    proxy: str
    fraction: float


def parse_prefilter(text: str) -> PrefilterSpec:
    """Parse ``naswot:top0.25`` (also ``synflow:top25%``)."""
    name, sep, rest = str(text).strip().partition(":")
    frac = None
    if sep and rest.startswith("top"):
        raw = rest[3:]
        try:
            frac = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            frac = None
    if name not in PROXIES or frac is None or not 0 < frac <= 1:
        raise ConfigError(f"--prefilter: expected PROXY:topF with PROXY one of {', '.join(PROXIES)} "
                          f"and 0 < F <= 1 (e.g. naswot:top0.25), found {text!r}")
    return PrefilterSpec(name, frac)


def prefilter(pool: Sequence[Architecture], spec: PrefilterSpec, batch, seed: int = 0
              ) -> list[tuple[Architecture, float]]:
    """The best ``ceil(fraction * len(pool))`` of ``pool`` by ``spec.proxy`` (at least one),
    best first, with their scores; ties keep pool order. A study proposes ``1 / fraction``
    candidates per evaluation and trains only what this keeps."""
    scored = [(a, compute_proxies(a, batch, seed, which=(spec.proxy,))[spec.proxy])
              for a in pool]
    keep = max(1, math.ceil(spec.fraction * len(pool) - 1e-9))
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))
    return [scored[i] for i in order[:keep]]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties; ``-inf`` values rank lowest).

    >>> round(spearman([1, 2, 3], [10, 30, 20]), 6)
    0.5
    """
    def ranks(xs):
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(list(a)), ranks(list(b))
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb) if va and vb else 0.0

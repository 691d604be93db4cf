"""Standard layers of the tree DSL, with lazy input sizes and closed-form output shapes.

Each layer reads its input size from the incoming shape at derivation time, so the space author
writes ``conv2d(choice([32, 64]))`` without saying how many channels come in. Shapes exclude the
batch dimension: images are ``(C, H, W)``, features ``(D,)``.

Conventions (they decide parameter counts and shapes, and the compiler follows them exactly):

* ``conv2d(filters, kernel, stride)``: bias (``bias=False`` drops it), "same" padding
  ``kernel // 2`` (odd kernels only), so the output side is ``ceil(side / stride)`` and never
  drops below 1. ``filters=None`` keeps the input channel count.
* ``maxpool``/``avgpool`` with ``padding="valid"`` (default): the window is clamped to the input
  side (a 2x2 pool on a 1x1 map is a 1x1 pool) and partial windows at the border are kept
  (``ceil_mode``), so pooling never drives a side below 1. ``padding="same"`` pads ``kernel // 2``.
* ``dropout(keep)`` takes the keep probability (DeepArchitect's convention); torch gets
  ``p = 1 - keep``.
* ``batchnorm`` normalises channels of ``(C, H, W)`` or features of ``(D,)``.
* ``crelu`` is ``cat(relu(x), relu(-x))`` on the channel/feature axis: it doubles that axis.
* ``global_pool`` averages over ``H, W``: ``(C, H, W) -> (C,)``; ``flatten``: ``-> (C*H*W,)``.
* ``zero`` outputs zeros of its input's shape. As a :func:`~workbench.dsl.dag_cell` edge
  operation it is the absent edge: the cell leaves it out of its graph.

>>> import random
>>> from workbench.dsl.core import Ctx
>>> node, out = conv2d(16, 3, 2).derive(Ctx(None, random.Random(0), True), "", (3, 7, 7))
>>> node.label, out
('conv2d(16,3,2)', (16, 4, 4))
>>> maxpool(2).derive(Ctx(None, random.Random(0), True), "", (16, 1, 1))[1]
(16, 1, 1)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.architecture import Node
from workbench.dsl.core import Ctx, Module, Shape, join, make_node
from workbench.errors import InvalidArchitecture

Rule = Callable[..., tuple[Shape, tuple, str]]  # (shape, **values) -> (out, args, label)


def _need_image(symbol: str, shape: Shape, path: str) -> None:
    if len(shape) != 3:
        raise InvalidArchitecture(f"at {path or 'root'}: {symbol} expects a (C, H, W) input, "
                                  f"found shape {shape}")


def _conv2d(shape: Shape, path: str, filters: Any, kernel: Any, stride: Any):
    _need_image("conv2d", shape, path)
    c, h, w = shape
    f = c if filters is None else int(filters)
    k, s = int(kernel), int(stride)
    if k % 2 == 0 or k < 1 or s < 1 or f < 1:
        raise InvalidArchitecture(f"at {path or 'root'}: conv2d expects an odd kernel, stride "
                                  f">= 1 and filters >= 1, found kernel={k} stride={s} filters={f}")
    out = (f, -(-h // s), -(-w // s))
    return out, (c, f, k, s, k // 2), f"conv2d({f},{k},{s})"


def _pool_side(side: int, k: int, s: int, pad: int, ceil: bool) -> int:
    # torch's pooling formula, including its rule that the last window starts inside the input
    span = side + 2 * pad - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= side + pad:
        out -= 1
    return out


def _pool(symbol: str):
    def rule(shape: Shape, path: str, kernel: Any, stride: Any, padding: Any):
        _need_image(symbol, shape, path)
        c, h, w = shape
        k = int(kernel)
        s = k if stride is None else int(stride)
        if padding == "same":
            if k % 2 == 0:
                raise InvalidArchitecture(f"at {path or 'root'}: {symbol} with padding 'same' "
                                          f"expects an odd kernel, found {k}")
            kh = kw = k
            pad, ceil = k // 2, False
        elif padding == "valid":
            kh, kw, pad, ceil = min(k, h), min(k, w), 0, True
        else:
            raise InvalidArchitecture(f"at {path or 'root'}: {symbol} expects padding 'valid' or "
                                      f"'same', found {padding!r}")
        out = (c, _pool_side(h, kh, s, pad, ceil), _pool_side(w, kw, s, pad, ceil))
        return out, (kh, kw, s, pad, ceil), f"{symbol}({k},{s},{padding})"
    return rule


def _linear(shape: Shape, path: str, units: Any):
    if not shape:
        raise InvalidArchitecture(f"at {path or 'root'}: linear expects a tensor input, found "
                                  f"a scalar")
    u = int(units)
    return (*shape[:-1], u), (u,), f"linear({u})"


def _batchnorm(shape: Shape, path: str):
    if len(shape) not in (1, 3):
        raise InvalidArchitecture(f"at {path or 'root'}: batchnorm expects a (C, H, W) or (D,) "
                                  f"input, found shape {shape}")
    return shape, (shape[0],), "batchnorm"


def _same(symbol: str):
    def rule(shape: Shape, path: str):
        return shape, (), symbol
    return rule


def _crelu(shape: Shape, path: str):
    if not shape:
        raise InvalidArchitecture(f"at {path or 'root'}: crelu expects a tensor, found a scalar")
    return (2 * shape[0], *shape[1:]), (), "crelu"


def _dropout(shape: Shape, path: str, keep: Any):
    kp = float(keep)
    if not 0.0 < kp <= 1.0:
        raise InvalidArchitecture(f"at {path or 'root'}: dropout expects a keep probability in "
                                  f"(0, 1], found {keep!r}")
    return shape, (kp,), f"dropout({kp:g})"


def _global_pool(shape: Shape, path: str):
    _need_image("global_pool", shape, path)
    return (shape[0],), (), "global_pool"


def _flatten(shape: Shape, path: str):
    return (math.prod(shape),), (), "flatten"


RULES: dict[str, Rule] = {
    "conv2d": _conv2d, "maxpool": _pool("maxpool"), "avgpool": _pool("avgpool"),
    "linear": _linear, "batchnorm": _batchnorm, "crelu": _crelu, "dropout": _dropout,
    "global_pool": _global_pool, "flatten": _flatten,
    **{s: _same(s) for s in ("relu", "relu6", "elu", "softplus", "tanh", "identity", "zero")},
}


@dataclass(frozen=True, eq=False)
class Layer(Module):
    """One layer: a symbol the compiler knows plus parameters, each a constant or a
    hyperparameter. Open parameters are asked at ``<scope>/<name>/<param>`` (no ``<name>`` level
    when the layer is unnamed), in parameter order."""

    symbol: str
    params: tuple[tuple[str, Any], ...] = ()
    name: str | None = None
    attrs: tuple[tuple[str, Any], ...] = ()  # static facts for the builder, e.g. (("bias", False),)

    def own_hps(self) -> tuple[Any, ...]:
        return tuple(v for _, v in self.params)

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        values = {k: ctx.value(v, join(where, k), self.symbol, where.count("/"))
                  for k, v in self.params}
        out, args, label = RULES[self.symbol](shape, where, **values)
        return make_node(self.symbol, label, "layer", where, shape, out, args, (), self.attrs), out

    def count(self, counting: Any, env: frozenset) -> Counter:
        return counting.bind(self.own_hps(), env)


def layer(symbol: str, name: str | None = None, **params: Any) -> Layer:
    if symbol not in RULES:
        raise InvalidArchitecture(f"expected a layer ({', '.join(sorted(RULES))}), "
                                  f"found {symbol!r}")
    return Layer(symbol, tuple(params.items()), name)


def conv2d(filters: Any = None, kernel: Any = 3, stride: Any = 1, name: str | None = None, *,
           bias: bool = True) -> Layer:
    """2-D convolution with "same" padding and a bias unless ``bias=False`` (as before a
    batchnorm); ``filters=None`` keeps the channel count."""
    conv = layer("conv2d", name, filters=filters, kernel=kernel, stride=stride)
    # only a dropped bias is recorded, so trees of biased convs stay as they were
    return conv if bias else Layer(conv.symbol, conv.params, name, (("bias", False),))


def linear(units: Any, name: str | None = None) -> Layer:
    """Dense layer with bias on the last dimension."""
    return layer("linear", name, units=units)


def batchnorm(name: str | None = None) -> Layer:
    return layer("batchnorm", name)


def dropout(keep: Any, name: str | None = None) -> Layer:
    """Dropout with keep probability ``keep`` (torch ``p = 1 - keep``)."""
    return layer("dropout", name, keep=keep)


def maxpool(kernel: Any = 2, stride: Any = None, padding: str = "valid",
            name: str | None = None) -> Layer:
    """Max pooling; ``stride`` defaults to ``kernel``; see the module doc for clamping."""
    return layer("maxpool", name, kernel=kernel, stride=stride, padding=padding)


def avgpool(kernel: Any = 2, stride: Any = None, padding: str = "valid",
            name: str | None = None) -> Layer:
    """Average pooling (padding excluded from the mean); same conventions as :func:`maxpool`."""
    return layer("avgpool", name, kernel=kernel, stride=stride, padding=padding)


def global_pool(name: str | None = None) -> Layer:
    return layer("global_pool", name)


def flatten(name: str | None = None) -> Layer:
    return layer("flatten", name)


def relu(name: str | None = None) -> Layer:
    return layer("relu", name)


def relu6(name: str | None = None) -> Layer:
    return layer("relu6", name)


def elu(name: str | None = None) -> Layer:
    return layer("elu", name)


def softplus(name: str | None = None) -> Layer:
    return layer("softplus", name)


def tanh(name: str | None = None) -> Layer:
    return layer("tanh", name)


def crelu(name: str | None = None) -> Layer:
    return layer("crelu", name)


def identity(name: str | None = None) -> Layer:
    return layer("identity", name)


def zero(name: str | None = None) -> Layer:
    """Zeros of the input's shape; in a DAG cell, the absent edge (see :func:`dag_cell`).

    >>> import random
    >>> from workbench.dsl.core import Ctx
    >>> zero().derive(Ctx(None, random.Random(0), True), "edge", (4, 2, 2))[1]
    (4, 2, 2)
    """
    return layer("zero", name)


def is_zero(module: Module) -> bool:
    """Whether ``module`` is the zero op (a cell leaves such edges out of its graph)."""
    return isinstance(module, Layer) and module.symbol == "zero"

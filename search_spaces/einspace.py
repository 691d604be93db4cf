"""einspace: a probabilistic context-free grammar over fundamental operations.

Modules have one input and one output tensor, in one of two modes: **im** ``[B, C, H, W]`` or
**col** ``[B, L, D]`` (shapes below exclude the batch dimension)::

    network     -> sequential | branching(k) | routing                  (never a bare computation)
    module      -> sequential | branching(k) | routing | computation
    sequential  -> sequential[module, module]
    branching   -> branching(2)[split2, module, module, merge2]
                 | branching(4)[split4, module, merge4]   (one module, instantiated 4x, untied)
                 | branching(8)[split8, module, merge8]
    routing     -> routing[pre, module, post]
    computation -> computation[op]

The probability of ``computation`` is ``p`` (0.32 by default, einspace's value) at depth 0 and rises
with depth, ``1 - (1 - p) * decay**depth``, which bounds the expected size; hard limits on depth,
nodes and parameters then allow only ``computation``/cheaper options.

Conventions that fix parameter counts: every ``linear`` has a bias and acts on the last dim;
``norm`` is BatchNorm over channels on im tensors and LayerNorm over the last dim on col tensors;
``pos_enc`` holds one learnable value per non-batch element; ``relu`` is ReLU.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from workbench.errors import ConfigError
from workbench.grammar import Form, Grammar, Invalid, Limits, Op
from workbench.spaces import GrammarSpace

VERSION = "1"
ABS_WIDTHS = (16, 32, 64, 128, 256, 512, 1024, 2048)
REL_WIDTHS = (("x0.25", Fraction(1, 4)), ("x0.5", Fraction(1, 2)), ("x1", Fraction(1)),
              ("x2", Fraction(2)), ("x4", Fraction(4)))
IM2COL = ((1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (4, 4, 0), (8, 8, 0), (16, 16, 0))
PERMS_3D = tuple(p for p in itertools.permutations((1, 2, 3)) if p != (1, 2, 3))


@dataclass(frozen=True)
class TensorState:
    """Shape (no batch dim) plus the spatial size of the innermost im2col, which col2im needs."""

    shape: tuple[int, ...]
    hw: tuple[int, int] | None = None

    @property
    def mode(self) -> str:
        return "im" if len(self.shape) == 3 else "col"


def _shape_of(state):
    return state[0].shape if isinstance(state, tuple) else state.shape


def _same(state: TensorState, shape: tuple[int, ...]) -> TensorState:
    return TensorState(shape, state.hw)


# -- split ----------------------------------------------------------------------------------------
def clone(k: int) -> Op:
    return Op("clone", (k,), rule=lambda s: (s,) * k, weight=1.0)


def group(k: int, dim: int) -> Op:
    def rule(s: TensorState):
        d = dim - 1
        if d >= len(s.shape):
            return Invalid(f"dim {dim} does not exist in a {s.mode} tensor {s.shape}")
        if s.shape[d] % k:
            return Invalid(f"dim {dim} of size {s.shape[d]} is not divisible by {k}")
        part = s.shape[:d] + (s.shape[d] // k,) + s.shape[d + 1:]
        return (_same(s, part),) * k
    return Op("group", (k, dim), rule=rule, weight=1 / 3)


# -- merge ----------------------------------------------------------------------------------------
def _add(parts):
    if any(p.shape != parts[0].shape for p in parts):
        return Invalid(f"add needs equal shapes, found {' vs '.join(str(p.shape) for p in parts[:2])}")
    return parts[0]


def cat(dim: int) -> Op:
    def rule(parts):
        d = dim - 1
        first = parts[0].shape
        if d >= len(first) or any(len(p.shape) != len(first) for p in parts):
            return Invalid(f"cat({dim}) needs rank > {d} and equal ranks")
        for p in parts:
            if p.shape[:d] + p.shape[d + 1:] != first[:d] + first[d + 1:]:
                return Invalid(f"cat({dim}) needs equal sizes off dim {dim}, "
                               f"found {first} vs {p.shape}")
        return _same(parts[0], first[:d] + (sum(p.shape[d] for p in parts),) + first[d + 1:])
    return Op("cat", (dim,), rule=rule, weight=1 / 3)


def _dot(parts):
    a, b = parts[0].shape, parts[1].shape
    if len(a) != len(b) or a[:-2] != b[:-2] or a[-1] != b[-2]:
        return Invalid(f"matrix product needs [..., n, m] @ [..., m, p], found {a} @ {b}")
    return _same(parts[0], a[:-2] + (a[-2], b[-1]))


def merges(k: int) -> list[Op]:
    ops = [Op("add", rule=_add, weight=1.0)] + [cat(d) for d in (1, 2, 3)]
    if k == 2:
        ops += [Op("dot_product", rule=_dot, weight=0.5),
                Op("scaled_dot_product", rule=_dot, weight=0.5)]
    return ops


# -- routing --------------------------------------------------------------------------------------
def permute(order: tuple[int, ...]) -> Op:
    rank = len(order)

    def rule(s: TensorState):
        if len(s.shape) != rank:
            return Invalid(f"permute{''.join(map(str, order))} needs a rank-{rank + 1} tensor, "
                           f"found {s.mode} {s.shape}")
        return _same(s, tuple(s.shape[i - 1] for i in order))
    return Op("permute" + "".join(map(str, order)), rule=rule, weight=1 / 6, symbol="permute")


def im2col(k: int, stride: int, pad: int) -> Op:
    def rule(s: TensorState):
        if s.mode != "im":
            return Invalid(f"im2col needs an im tensor [C, H, W], found col {s.shape}")
        c, h, w = s.shape
        if h + 2 * pad < k or w + 2 * pad < k:
            return Invalid(f"kernel {k} does not fit {h}x{w} with padding {pad}")
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return TensorState((ho * wo, c * k * k), (ho, wo))
    return Op("im2col", (k, stride, pad), rule=rule, weight=1 / len(IM2COL))


def _col2im(s: TensorState):
    if s.mode != "col":
        return Invalid(f"col2im needs a col tensor [L, D], found im {s.shape}")
    if s.hw is None:
        return Invalid("col2im needs an enclosing im2col to know the spatial size")
    length, d = s.shape
    if length != s.hw[0] * s.hw[1]:
        return Invalid(f"col2im needs L = {s.hw[0]}*{s.hw[1]}, found L = {length}")
    return TensorState((d,) + s.hw, s.hw)


# -- computation ----------------------------------------------------------------------------------
def linear(n: int) -> Op:
    return Op("linear", (n,), rule=lambda s: _same(s, s.shape[:-1] + (n,)),
              params=lambda s: s.shape[-1] * n + n, weight=1 / len(ABS_WIDTHS))


def linear_rel(name: str, r: Fraction) -> Op:
    def rule(s: TensorState):
        n = s.shape[-1] * r
        if n.denominator != 1 or n < 1:
            return Invalid(f"linear({name}) of width {s.shape[-1]} is not a whole width")
        return _same(s, s.shape[:-1] + (int(n),))

    def params(s: TensorState) -> int:
        n = int(s.shape[-1] * r)
        return s.shape[-1] * n + n
    return Op("linear", (name,), rule=rule, params=params, weight=1 / len(REL_WIDTHS))


def _norm_params(s: TensorState) -> int:
    return 2 * (s.shape[0] if s.mode == "im" else s.shape[-1])


def build_grammar(*, p_computation: float = 0.32, depth_decay: float = 0.85,
                  limits: Limits | None = None) -> Grammar:
    """The einspace grammar; ``p_computation`` and ``depth_decay`` set the module probabilities."""
    if not 0 < p_computation < 1 or not 0 < depth_decay <= 1:
        raise ConfigError(f"einspace: expected 0 < p_computation < 1 and 0 < depth_decay <= 1, "
                          f"found {p_computation}, {depth_decay}")

    def p_comp(d: int) -> float:
        return 1 - (1 - p_computation) * depth_decay ** d

    def share(frac: float):
        return lambda d: (1 - p_comp(d)) * frac

    seq = Form("sequential", [("first", "module"), ("second", "module")], weight=share(1 / 3))
    br2 = Form("branching", [("split", "split2"), ("branch[0]", "module"), ("branch[1]", "module"),
                             ("merge", "merge2")], args=(2,), wiring="branch", weight=share(1 / 6))
    br4 = Form("branching", [("split", "split4"), ("inner", "module"), ("merge", "merge4")],
               args=(4,), wiring="branch", replicate=4, weight=share(1 / 12))
    br8 = Form("branching", [("split", "split8"), ("inner", "module"), ("merge", "merge8")],
               args=(8,), wiring="branch", replicate=8, weight=share(1 / 12))
    rout = Form("routing", [("pre", "pre"), ("body", "module"), ("post", "post")],
                weight=share(1 / 3))
    comp = Form("computation", [("op", "op")], weight=p_comp, grows=False)
    perms = [permute((2, 1))] + [permute(p) for p in PERMS_3D]
    ident = Op("identity", weight=1.0)
    rules: dict[str, Sequence[Op | Form]] = {
        "network": [seq, br2, br4, br8, rout],
        "module": [seq, br2, br4, br8, rout, comp],
        "split2": [clone(2)] + [group(2, d) for d in (1, 2, 3)],
        "split4": [clone(4)] + [group(4, d) for d in (1, 2, 3)],
        "split8": [clone(8)] + [group(8, d) for d in (1, 2, 3)],
        "merge2": merges(2), "merge4": merges(4), "merge8": merges(8),
        "pre": [ident] + perms + [im2col(*a) for a in IM2COL],
        "post": [ident] + perms + [Op("col2im", rule=_col2im, weight=1.0)],
        "op": [ident]
        + [linear(n) for n in ABS_WIDTHS]
        + [linear_rel(name, r) for name, r in REL_WIDTHS]
        + [Op("norm", rule=lambda s: s, params=_norm_params),
           Op("relu", rule=lambda s: s),
           Op("softmax", rule=lambda s: s),
           Op("pos_enc", rule=lambda s: s, params=lambda s: math.prod(s.shape))],
    }
    return Grammar("einspace", "network", rules, limits=limits or Limits(),
                   shape_of=_shape_of, version=VERSION)


# -- seed architectures (DESIGN.md §4.5), written with the macros einspace uses -------------------
def conv(k: int, s: int, p: int, c: int) -> str:
    return f"routing[im2col({k},{s},{p}), computation[linear({c})], col2im]"


BN, ACT, IDENT = "computation[norm]", "computation[relu]", "computation[identity]"


def S(*xs: str) -> str:  # noqa: N802 (the macro's name in the paper)
    """Right-nested sequential chain."""
    return xs[0] if len(xs) == 1 else f"sequential[{xs[0]}, {S(*xs[1:])}]"


def lin(n) -> str:
    return f"computation[linear({n})]"


def residual(body: str, shortcut: str = IDENT) -> str:
    return f"branching(2)[clone(2), {body}, {shortcut}, add]"


def resnet18() -> str:
    def block(c: int, stride: int, project: bool) -> str:
        short = S(conv(1, stride, 0, c), BN) if project else IDENT
        body = S(conv(3, stride, 1, c), BN, ACT, conv(3, 1, 1, c), BN)
        return S(residual(body, short), ACT)
    blocks = [block(64, 1, False), block(64, 1, False)]
    for c in (128, 256, 512):
        blocks += [block(c, 2, True), block(c, 1, False)]
    return S(conv(3, 1, 1, 64), BN, ACT, conv(3, 2, 1, 64), *blocks)


def wrn16_4() -> str:
    def block(c: int, stride: int, first: bool) -> str:
        short = conv(1, stride, 0, c) if first else IDENT
        body = S(conv(3, stride, 1, c), BN, ACT, conv(3, 1, 1, c))
        return S(residual(body, short), S(BN, ACT))
    blocks = []
    for c, s in ((64, 1), (128, 2), (256, 2)):
        blocks += [block(c, s, True), block(c, 1, False)]
    return S(conv(3, 1, 1, 16), BN, ACT, *blocks)


PATCH = "routing[im2col(4,4,0), computation[linear(512)], identity]"
POS = "computation[pos_enc]"


def vit(layers: int = 4) -> str:
    q = v = lin(64)
    kt = "routing[identity, computation[linear(64)], permute21]"
    scores = S(f"branching(2)[clone(2), {q}, {kt}, scaled_dot_product]", "computation[softmax]")
    head = f"branching(2)[clone(2), {scores}, {v}, dot_product]"
    mhsa = S(f"branching(4)[clone(4), {head}, cat(2)]", lin(512))
    ffn = S(lin(512), ACT, lin(512))
    layer = [residual(mhsa), BN, residual(ffn), BN]
    return S(PATCH, POS, *(layer * layers))


def mixer(layers: int = 8) -> str:
    token = S("routing[permute21, computation[linear(x4)], identity]", ACT,
              "routing[identity, computation[linear(x0.25)], permute21]")
    channel = S(lin(256), ACT, lin(512))
    layer = residual(S(BN, token, channel))
    return S(PATCH, POS, *([layer] * layers))


SEEDS = {"resnet18": resnet18, "wrn16_4": wrn16_4, "vit": vit, "mixer": mixer}


def make_space(input_shape=(3, 32, 32), num_classes: int = 10, *, p_computation: float = 0.32,
               depth_decay: float = 0.85, max_depth: int = 48, max_nodes: int = 1500,
               max_params: int = 50_000_000) -> GrammarSpace:
    """The einspace space bound to an input shape ``(C, H, W)`` (or ``(L, D)`` token input)."""
    if len(input_shape) not in (2, 3) or min(input_shape) < 1:
        raise ConfigError(f"einspace: expected an input shape C,H,W (or L,D), found {input_shape}")
    grammar = build_grammar(p_computation=p_computation, depth_decay=depth_decay,
                            limits=Limits(max_depth, max_nodes, max_params))
    seeds = {name: fn() for name, fn in SEEDS.items()} if len(input_shape) == 3 else {}
    return GrammarSpace(grammar, input_shape, num_classes,
                        initial_state=lambda shape: TensorState(tuple(shape)),
                        seeds=seeds, name="einspace",
                        description="einspace PCFG over fundamental operations (im/col modes)")

"""Standalone PyTorch source for a compiled architecture: one readable file that imports only torch.

The generator walks the *compiled* module tree (so every space whose builders produce known
modules is covered, einspace and the tree DSL alike) after one traced forward pass has recorded
each module's output shape. Two things come out of the walk:

* ``__init__``: every module that holds parameters or buffers, nested under exactly the names the
  compiler gave it (``backbone.3.branches.0.1.weight`` ...), so the compiled model's
  ``state_dict`` loads into the generated one with ``strict=True``;
* ``forward``: the computation written out in order, one statement per operation, with the
  output shape as a comment. Parameter-free operations (splits, merges, permutations, im2col ...)
  are written as plain tensor code instead of modules.

Emitters are registered per module class (:func:`emitter`); a module class without one stops the
export with a clear error instead of producing a file that would silently differ.

>>> import torch
>>> from workbench.spaces import get_space
>>> arch = get_space("einspace", (3, 8, 8), 10).parse(
...     "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]")
>>> src = to_python_source(arch)
>>> "self.backbone = Slots({" in src and "torch.relu(x)" in src
True
>>> namespace = {}
>>> exec(compile(src, "generated.py", "exec"), namespace)
>>> sorted(namespace["Network"]().state_dict())
['backbone.0.bias', 'backbone.0.weight', 'head.fc.bias', 'head.fc.weight']
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
from torch import nn

from workbench import ops
from workbench.architecture import Architecture
from workbench.errors import InvalidArchitecture, UnsupportedExport
from workbench.export.fx import emit_traced
from workbench.export.writer import (
    Shape,
    SourceWriter,
    Var,
    child_ref,
    fmt_shape,
    one,
    parts,
    render_file,
)

# An emitter writes the forward code of one module: (writer, module, ref, src, dst) -> output var.
# ``ref`` is the Python expression reaching the module (``self.backbone[3]``), ``src`` the input
# variable(s), ``dst`` the variable name to write to.
Emitter = Callable[[SourceWriter, nn.Module, str, Var, str], Var]
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class _Entry:
    emit: Emitter
    role: str  # "inline": no module in __init__; "leaf": registered as is; "container"
    construct: Callable[[nn.Module], str] | None = None


_EMITTERS: dict[type, _Entry] = {}


def emitter(*classes: type[M], role: str = "inline",
            construct: Callable[[M], str] | None = None
            ) -> Callable[[Callable[[SourceWriter, M, str, Var, str], Var]],
                          Callable[[SourceWriter, M, str, Var, str], Var]]:
    """Register how modules of exactly these classes are written out.

    ``role`` is ``"inline"`` (parameter-free code in ``forward``), ``"leaf"`` (a module created in
    ``__init__`` by ``construct(module) -> expression``; torch.nn classes default to their repr) or
    ``"container"`` (holds children under their compiler names).
    """
    def deco(fn: Callable[[SourceWriter, M, str, Var, str], Var]
             ) -> Callable[[SourceWriter, M, str, Var, str], Var]:
        # One registry for all classes: the casts widen fn/construct to any module, which is
        # safe because _entry hands an entry only modules of its classes (or their subclasses).
        for cls in classes:
            _EMITTERS[cls] = _Entry(cast(Emitter, fn), role,
                                    cast("Callable[[nn.Module], str] | None", construct))
        return fn
    return deco


def _entry(module: nn.Module, where: str) -> _Entry:
    """How to write ``module``: its class's emitter; a registered container base class whose
    ``forward`` it inherits unchanged (an ``nn.Sequential`` subclass is a chain); any torch.nn
    layer (rebuilt from its repr); else the module's own ``forward``, traced with torch.fx."""
    cls = type(module)
    entry = _EMITTERS.get(cls)
    if entry is not None:
        return entry
    for base in cls.__mro__[1:]:
        base_entry = _EMITTERS.get(base)
        if (base_entry is not None and base_entry.role != "leaf" and issubclass(base, nn.Module)
                and cls.forward is base.forward):
            return base_entry
    if _is_torch_builtin(module) and not list(module.children()):
        return _Entry(_call, "leaf")
    return _Entry(emit_traced, "container")


def is_known(module: nn.Module) -> bool:
    """True where a registered or built-in emitter writes ``module`` (no tracing needed)."""
    return _entry(module, "").emit is not emit_traced


def new_writer(shapes: dict[int, Shape] | None = None,
               inputs: dict[int, tuple[int, ...]] | None = None) -> SourceWriter:
    """A :class:`~workbench.export.writer.SourceWriter` whose sub-modules are written by the
    emitters registered here (and traced where none is)."""
    return SourceWriter(shapes or {}, inputs or {}, dispatch=_emit, is_known=is_known)


def _is_torch_builtin(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.modules.")


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


# -- construction (__init__) ------------------------------------------------------------------------
def _construct(module: nn.Module, where: str, depth: int, w: SourceWriter) -> str | None:
    """The expression building ``module`` in ``__init__``, or None where nothing is needed."""
    entry = _entry(module, where)
    if entry.role == "inline":
        if _has_state(module):  # an emitter that inlines must not drop weights
            raise UnsupportedExport(f"format py unsupported for this architecture: module at "
                                    f"{where} holds weights but is written inline")
        return None
    if entry.role == "leaf":
        return (entry.construct or _repr_construct)(module)
    pad = "    " * (depth + 3)
    items = []
    for name, child in module.named_children():
        expr = _construct(child, f"{where}.{name}", depth + 1, w)
        if expr is not None:
            items.append(f'{pad}"{name}": {expr},')
    own = dict(module.named_parameters(recurse=False))
    if any(True for _ in module.buffers(recurse=False)):
        raise UnsupportedExport(f"format py unsupported for this architecture: "
                                f"{type(module).__name__} at {where} holds buffers of its own")
    if not items and not own:
        return None
    params = ""
    if own:  # parameters held by the module itself (not by a child layer)
        params = ", {" + ", ".join(f"{k!r}: {tuple(v.shape)!r}" for k, v in own.items()) + "}"
        w.needs.add("params")
    body = "\n" + "\n".join(items) + "\n" + "    " * (depth + 2) if items else ""
    return "Slots({" + body + "}" + params + ")"


def _repr_construct(module: nn.Module) -> str:
    """``nn.Conv2d(3, 16, kernel_size=(3, 3), ...)`` from the layer's repr, plus any constructor
    argument the repr leaves out (``AvgPool2d`` omits ``count_include_pad``). Checked by rebuilding:
    the same settings and the same state_dict keys and shapes, or the export stops."""
    cls = type(module)
    args = [module.extra_repr()] if module.extra_repr() else []
    try:
        params = inspect.signature(cls.__init__).parameters
        try:
            rebuilt = _rebuild(cls, args)
        except Exception:  # noqa: BLE001 (a repr that is no call: keyword arguments from settings)
            args = [f"{k}={v!r}" for k, v in _settings(module).items() if k in params]
            if "bias" in params and getattr(module, "bias", True) is None:
                args.append("bias=False")
            rebuilt = _rebuild(cls, args)
        for key, value in _settings(module).items():
            if _settings(rebuilt).get(key, value) != value and key in params:
                args.append(f"{key}={value!r}")
        rebuilt = _rebuild(cls, args)
    except Exception as exc:  # noqa: BLE001 (any failure means the repr is not a constructor)
        raise UnsupportedExport(f"format py unsupported for this architecture: cannot write "
                                f"{cls.__name__} as source ({type(exc).__name__}: {exc})") from None
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if _settings(rebuilt) != _settings(module) or want != got:
        raise UnsupportedExport(f"format py unsupported for this architecture: cannot write "
                                f"{cls.__name__} as source (rebuilding it from its repr gives "
                                f"a different layer)")
    return f"nn.{cls.__name__}({', '.join(args)})"


def _rebuild(cls: type, args: list[str]) -> nn.Module:
    return eval(f"nn.{cls.__name__}({', '.join(args)})",  # noqa: S307 (a torch layer's own repr)
                {"nn": nn, "torch": torch})


def _settings(module: nn.Module) -> dict[str, object]:
    """A layer's plain settings (kernel_size, eps, count_include_pad ...)."""
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training"
            and isinstance(v, (bool, int, float, str, tuple, type(None)))}


# -- forward emitters ------------------------------------------------------------------------------
def _emit(w: SourceWriter, module: nn.Module, ref: str, src: Var, dst: str, where: str) -> Var:
    return _entry(module, where).emit(w, module, ref, src, dst)


def _call(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = {ref}({one(src, type(m).__name__)})", m, _label(m))
    return dst


def _label(m: nn.Module) -> str:
    """A few words saying what a called layer is: ``conv 3x3 /2 ->``, ``linear ->``."""
    if isinstance(m, nn.Conv2d):
        k, s = m.kernel_size, m.stride
        size = f"{k[0]}x{k[1]}" + (f" /{s[0]}" if s[0] == s[1] != 1 else f" stride {s}"
                                   if s != (1, 1) else "")
        return f"conv {size}{' (grouped)' if m.groups != 1 else ''} ->"
    names = {nn.Linear: "linear", nn.BatchNorm2d: "batchnorm", nn.LayerNorm: "layernorm",
             nn.BatchNorm1d: "batchnorm"}
    return f"{names.get(type(m), type(m).__name__)} ->"


def _linear_construct(m: nn.Module) -> str:
    bias = "" if m.bias is not None else ", bias=False"
    return f"nn.Linear({m.in_features}, {m.out_features}{bias})"


@emitter(nn.Linear, role="leaf", construct=_linear_construct)
def _linear(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    return _call(w, m, ref, src, dst)


@emitter(nn.Identity)
def _identity(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    return src


@emitter(nn.ReLU)
def _relu(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    if m.inplace:  # keep in-place semantics exactly: a clone split shares its input
        w.emit(f"{dst} = torch.relu_({one(src, 'relu')})", m)
    else:
        w.emit(f"{dst} = torch.relu({one(src, 'relu')})", m)
    return dst


@emitter(ops.Softmax, nn.Softmax)
def _softmax(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = torch.softmax({one(src, 'softmax')}, dim={m.dim})", m)
    return dst


@emitter(nn.Flatten)
def _flatten(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = {one(src, 'flatten')}.flatten({m.start_dim}, {m.end_dim})", m)
    return dst


@emitter(ops.Permute)
def _permute(w: SourceWriter, m: ops.Permute, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = {one(src, 'permute')}.permute{tuple(m.order)}", m)
    return dst


@emitter(ops.Im2Col)
def _im2col(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.needs.add("F")
    w.note(f"im2col({m.kernel},{m.stride},{m.padding}): unfold, tokens first")
    w.emit(f"{dst} = F.unfold({one(src, 'im2col')}, {m.kernel}, padding={m.padding}, "
           f"stride={m.stride}).transpose(1, 2)", m)
    return dst


@emitter(ops.Col2Im)
def _col2im(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    x = one(src, "col2im")
    w.note(f"col2im: tokens back onto the {m.h}x{m.w} grid")
    w.emit(f"{dst} = {x}.transpose(1, 2).reshape({x}.shape[0], {x}.shape[2], {m.h}, {m.w})", m)
    return dst


@emitter(ops.PosEnc, role="leaf", construct=lambda m: f"PosEnc({tuple(m.pos.shape[1:])})")
def _pos_enc(w: SourceWriter, m: ops.PosEnc, ref: str, src: Var, dst: str) -> Var:
    w.needs.add("PosEnc")
    w.emit(f"{dst} = {one(src, 'pos_enc')} + {ref}.pos", m)
    return dst


@emitter(ops.Chain, nn.Sequential, role="container")
def _chain(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    cur = src
    for name, child in m.named_children():
        cur = _emit(w, child, child_ref(ref, name), cur, dst, f"{ref}.{name}")
    return cur


@emitter(ops.Clone)
def _clone(w: SourceWriter, m: ops.Clone, ref: str, src: Var, dst: str) -> Var:
    return [one(src, "clone")] * m.k  # every branch reads the same tensor


@emitter(ops.Group)
def _group(w: SourceWriter, m: ops.Group, ref: str, src: Var, dst: str) -> Var:
    names = [f"{dst}_{i}" for i in range(m.k)]
    w.emit(f"{', '.join(names)} = torch.chunk({one(src, 'group')}, {m.k}, dim={m.dim})", m)
    return names


@emitter(ops.Add)
def _add(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = {' + '.join(parts(src, 'add'))}", m)
    return dst


@emitter(ops.Cat)
def _cat(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    w.emit(f"{dst} = torch.cat([{', '.join(parts(src, 'cat'))}], dim={m.dim})", m)
    return dst


@emitter(ops.DotProduct)
def _dot(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    a, b = parts(src, "dot_product")
    scale = "" if m.scale == 1.0 else f" * {m.scale!r}"  # repr round-trips the exact float
    w.emit(f"{dst} = torch.matmul({a}, {b}){scale}", m)
    return dst


@emitter(nn.ModuleList, nn.ModuleDict, role="container")
def _module_list(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    # Only holders: whoever owns them (a branching) writes the calls to their entries.
    raise UnsupportedExport(f"format py unsupported for this architecture: {ref} is a "
                            f"{type(m).__name__}, which cannot be called")


@emitter(ops.Branch, role="container")
def _branch(w: SourceWriter, m: ops.Branch, ref: str, src: Var, dst: str) -> Var:
    x = one(src, "branching")
    k = len(m.branches)
    w.note(f"branching({k}): {_describe(m.split)} -> {k} branches -> {_describe(m.merge)}")
    # A short local name keeps nested lines readable (only for blocks that exist in __init__).
    if ref.count(".") + ref.count("[") > 2 and _has_state(m):
        alias = "blk" + dst[len(dst.rstrip("_0123456789")):]
        w.emit(f"{alias} = {ref}")
        ref = alias
    pieces = parts(_emit(w, m.split, child_ref(ref, "split"), x, dst, f"{ref}.split"),
                   "a branching")
    outs = []
    for i, (branch, part) in enumerate(zip(m.branches, pieces)):
        out = _emit(w, branch, child_ref(child_ref(ref, "branches"), str(i)), part, f"{dst}_{i}",
                    f"{ref}.branches.{i}")
        outs.append(one(out, "a branch"))
    return _emit(w, m.merge, child_ref(ref, "merge"), outs, dst, f"{ref}.merge")


def _describe(m: nn.Module) -> str:
    name = type(m).__name__.lower()
    if isinstance(m, (ops.Clone, ops.Group)):
        return f"{name}({m.k}{', ' + str(m.dim) if isinstance(m, ops.Group) else ''})"
    if isinstance(m, ops.Cat):
        return f"cat({m.dim})"
    if isinstance(m, ops.DotProduct):
        return "scaled_dot_product" if m.scale != 1.0 else "dot_product"
    return name


@emitter(ops.Head, role="container")
def _head(w: SourceWriter, m: ops.Head, ref: str, src: Var, dst: str) -> Var:
    x = one(src, "the head")
    if m.flatten:
        w.emit(f"{dst} = {x}.flatten(1)")
    elif m.pool_dims:
        w.note("head: mean over " + ("spatial positions" if len(m.pool_dims) == 2 else "tokens"))
        w.emit(f"{dst} = {x}.mean(dim={tuple(m.pool_dims)!r})")
    else:
        dst = x
    return _emit(w, m.fc, child_ref(ref, "fc"), dst, dst, f"{ref}.fc")


@emitter(ops.Network, role="container")
def _network(w: SourceWriter, m: ops.Network, ref: str, src: Var, dst: str) -> Var:
    x = _emit(w, m.backbone, child_ref(ref, "backbone"), src, dst, "backbone")
    return _emit(w, m.head, child_ref(ref, "head"), x, dst, "head")


# -- the file ---------------------------------------------------------------------------------------
def _trace_shapes(model: nn.Module, input_shape: tuple[int, ...]
                  ) -> tuple[dict[int, Shape], dict[int, tuple[int, ...]]]:
    """Output shape of every module and the shape of its (first) input, from one forward pass."""
    shapes: dict[int, Shape] = {}
    inputs: dict[int, tuple[int, ...]] = {}

    def hook(module: nn.Module, args: tuple, out: object) -> None:
        if args and isinstance(args[0], torch.Tensor):
            inputs[id(module)] = tuple(args[0].shape[1:])
        if isinstance(out, torch.Tensor):
            shapes[id(module)] = tuple(out.shape[1:])
        elif isinstance(out, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in out):
            shapes[id(module)] = [tuple(t.shape[1:]) for t in out]

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(2, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return shapes, inputs


def to_python_source(arch: Architecture, model: nn.Module | None = None) -> str:
    """One standalone ``.py`` file (imports only torch) defining ``Network`` for ``arch``.

    ``model`` is the compiled model to describe (default ``compile_model(arch)``); its
    ``state_dict`` loads into ``Network()`` with ``strict=True``.
    """
    from workbench.compiler import compile_model

    model = model if model is not None else compile_model(arch)
    was_training = model.training
    model.eval()  # shapes (and any traced forward) as in inference: BatchNorm on running stats
    try:
        return _generate(arch, model)
    finally:
        model.train(was_training)


def _generate(arch: Architecture, model: nn.Module) -> str:
    w = new_writer(*_trace_shapes(model, arch.input_shape))
    entry = _entry(model, "the model")
    if entry.role != "container":
        raise UnsupportedExport(f"format py unsupported for this architecture: expected a "
                                f"network container at the root, found {type(model).__name__}")
    init = []
    for name, child in model.named_children():
        expr = _construct(child, name, 0, w)
        if expr is None:
            continue
        if not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidArchitecture(f"format py: expected identifier names at the root of the "
                                      f"model, found {name!r}")
        init.append(f"        self.{name} = {expr}")
    w.lines.append(f"        # x: {fmt_shape(tuple(arch.input_shape))}")
    out = _emit(w, model, "self", "x", "x", "the model")
    w.lines.append(f"        return {one(out, 'the network output')}")
    return render_file(arch, model, init, w)


def check_source(source: str, model: nn.Module) -> None:
    """Build the generated ``Network`` and check its state_dict has the model's keys and shapes."""
    namespace: dict[str, object] = {"__name__": "exported_network"}
    exec(compile(source, "<exported network>", "exec"), namespace)  # noqa: S102 (our own output)
    net = namespace["Network"]()  # type: ignore[operator]
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if want != got:
        diff = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        raise UnsupportedExport(f"format py: generated state_dict does not match the compiled "
                                f"model (first difference: {diff[0]})")


__all__ = ["Emitter", "UnsupportedExport", "check_source", "emitter", "is_known", "new_writer",
           "to_python_source"]

"""Source for modules with a ``forward`` of their own (a space's custom blocks, DAG cells ...).

Where no emitter is registered for a module class, its ``forward`` is traced with ``torch.fx``
(sub-modules that have emitters stay opaque calls) and the graph is written back out as plain
tensor code, statement by statement, with shapes from ``ShapeProp``. Only torch functions, tensor
methods and Python operators can appear, so the output still imports nothing but torch.

>>> import torch
>>> from torch import nn
>>> class Residual(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(4, 4)
...     def forward(self, x):
...         return torch.relu(self.fc(x)) + x
>>> from workbench.export.source import new_writer
>>> w = new_writer()
>>> emit_traced(w, Residual(), "self.block", "x", "x")
'x'
>>> print("\\n".join(line.strip() for line in w.lines))
# Residual: traced forward
x_fc = self.block.fc(x)  # linear ->
x_relu = torch.relu(x_fc)
x = x_relu + x
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from workbench.errors import UnsupportedExport
from workbench.export.writer import SourceWriter, Var, child_ref, fmt_shape, one

_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
          operator.floordiv: "//", operator.matmul: "@", operator.pow: "**", operator.mod: "%"}


class _Tracer(fx.Tracer):
    """Keeps modules with an emitter as opaque calls; traces through everything else."""

    def __init__(self, is_known: Callable[[nn.Module], bool]):
        super().__init__()
        self.known = is_known

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self.known(m)


def _unsupported(ref: str, why: str) -> UnsupportedExport:
    return UnsupportedExport(f"format py unsupported for this architecture: cannot write the "
                             f"forward of {ref} as source ({why})")


def emit_traced(w: SourceWriter, m: nn.Module, ref: str, src: Var, dst: str) -> Var:
    """Write ``m``'s traced forward; returns the variable holding its output."""
    x = one(src, type(m).__name__)
    assert w.is_known is not None, "a SourceWriter made without is_known"
    try:
        graph = _Tracer(w.is_known).trace(m)
    except Exception as exc:  # noqa: BLE001 (untraceable control flow, unsupported Python)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise _unsupported(ref, f"torch.fx cannot trace {type(m).__name__}: "
                                f"{type(exc).__name__}: {first}") from None
    gm = fx.GraphModule(m, graph)
    in_shape = w.inputs.get(id(m))
    if in_shape is not None:  # shapes for the comments; the traced graph is static
        from torch.fx.passes.shape_prop import ShapeProp

        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(2, *in_shape))
    w.note(f"{type(m).__name__}: traced forward")
    names: dict[fx.Node, str] = {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise _unsupported(ref, f"expected forward(x) with one input, found "
                                f"{len(placeholders)} inputs")
    for node in graph.nodes:
        if node.op == "placeholder":
            names[node] = x
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise _unsupported(ref, "expected one tensor as the output")
            return names[out]
        else:
            names[node] = _node(w, gm, node, names, ref, dst)
    raise _unsupported(ref, "the traced graph has no output")


def _node(w: SourceWriter, gm: fx.GraphModule, node: fx.Node, names: dict[fx.Node, str], ref: str,
          dst: str) -> str:
    users = list(node.users)
    var = dst if len(users) == 1 and users[0].op == "output" else f"{dst}_{node.name}"

    def lit(a: object) -> str:
        return _literal(a, names, ref)

    if node.op == "call_module":
        sub = gm.get_submodule(str(node.target))
        sub_ref = ref
        for part in str(node.target).split("."):
            sub_ref = child_ref(sub_ref, part)
        if len(node.args) != 1 or node.kwargs:
            raise _unsupported(ref, f"{node.target} is called with several arguments")
        arg = node.args[0]
        if not isinstance(arg, fx.Node):
            raise _unsupported(ref, f"{node.target} is called on a constant")
        out = w.write_module(sub, sub_ref, names[arg], var, f"{ref}.{node.target}")
        return one(out, f"{node.target}'s output")
    if node.op == "get_attr":
        target = ref
        for part in str(node.target).split("."):
            target = child_ref(target, part)
        return target
    args = [lit(a) for a in node.args] + [f"{k}={lit(v)}" for k, v in node.kwargs.items()]
    if node.op == "call_method":
        expr = f"{args[0]}.{node.target}({', '.join(args[1:])})"
    elif node.target in _INFIX and len(args) == 2 and not node.kwargs:
        expr = f"{args[0]} {_INFIX[node.target]} {args[1]}"
    elif node.target is operator.getitem:
        index = node.args[1]
        parts = index if isinstance(index, tuple) else (index,)
        inner = ", ".join(_slice(v, names, ref) if isinstance(v, slice) else lit(v) for v in parts)
        expr = f"{args[0]}[{inner}{',' if isinstance(index, tuple) and len(index) == 1 else ''}]"
    elif node.target is operator.neg:
        expr = f"-{args[0]}"
    elif node.target is builtins.getattr:
        expr = f"{args[0]}.{node.args[1]}"
    else:
        expr = f"{_function_name(node.target, ref, w)}({', '.join(args)})"
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    comment = f"  # {fmt_shape(tuple(shape)[1:])}" if shape is not None else ""
    w.lines.append(f"{w.indent}{var} = {expr}{comment}")
    return var


def _function_name(fn: object, ref: str, w: SourceWriter) -> str:
    name = getattr(fn, "__name__", "")
    if name and getattr(torch, name, None) is fn:
        return f"torch.{name}"
    if name and getattr(F, name, None) is fn:
        w.needs.add("F")
        return f"F.{name}"
    raise _unsupported(ref, f"it calls {getattr(fn, '__module__', '?')}.{name or fn!r}, which is "
                            f"neither a torch function nor an operator")


def _literal(a: object, names: dict[fx.Node, str], ref: str) -> str:
    if isinstance(a, fx.Node):
        return names[a]
    if isinstance(a, float) and not math.isfinite(a):
        return f"float({str(a)!r})"
    if a is None or isinstance(a, (bool, int, float, str)) or a is Ellipsis:
        return repr(a)
    if isinstance(a, torch.dtype):
        return str(a)  # "torch.float32"
    if isinstance(a, slice):
        return f"slice({_literal(a.start, names, ref)}, {_literal(a.stop, names, ref)}, " \
               f"{_literal(a.step, names, ref)})"
    if isinstance(a, tuple):
        inner = ", ".join(_literal(v, names, ref) for v in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    if isinstance(a, list):
        return "[" + ", ".join(_literal(v, names, ref) for v in a) + "]"
    raise _unsupported(ref, f"it uses a constant of type {type(a).__name__}")


def _slice(a: slice, names: dict[fx.Node, str], ref: str) -> str:
    """``1:3``, ``::2``, ``:`` -- the subscript form of a slice."""
    def part(v: object) -> str:
        return "" if v is None else _literal(v, names, ref)
    text = f"{part(a.start)}:{part(a.stop)}"
    return text + (f":{part(a.step)}" if a.step is not None else "")

"""The writer of standalone PyTorch source, shared by the module walker (:mod:`.source`) and the
traced-forward writer (:mod:`.fx`): ``forward`` lines with shape comments, Python access to
sub-modules, and the file around them (imports, constants, helper classes, ``class Network``).

Both writers emit through one :class:`SourceWriter`; a sub-module is written by
:meth:`SourceWriter.write_module`, which dispatches back to the emitter registry of
:mod:`.source` (so a traced forward can call modules that have emitters, and those can hold
modules that are traced).

>>> w = SourceWriter({}, {}, dispatch=None, is_known=None)
>>> w.emit("x = torch.relu(x)")
>>> w.lines
['        x = torch.relu(x)']
>>> child_ref("self.backbone", "3"), child_ref("self", "head"), child_ref("blk", "forward")
('self.backbone[3]', 'self.head', "blk['forward']")
>>> fmt_shape((16, 8, 8)), fmt_shape([(4, 8), (4, 8)])
('[B, 16, 8, 8]', '2 x [B, 4, 8]')
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from workbench.architecture import Architecture
from workbench.errors import UnsupportedExport

Var = str | list[str]  # the variable(s) holding a tensor or a list of tensors in ``forward``
Shape = tuple[int, ...] | list[tuple[int, ...]]  # per-sample shape of a tensor or a tensor list

# (writer, module, ref, src, dst, where) -> the variable(s) holding the module's output
ModuleWriter = Callable[["SourceWriter", nn.Module, str, Var, str, str], Var]

__all__ = ["ModuleWriter", "Shape", "SourceWriter", "Var", "child_ref", "fmt_shape", "one", "parts",
           "render_file"]


@dataclass
class SourceWriter:
    """State of one generation: forward lines, traced shapes and the helpers the file needs.

    ``shapes``/``inputs``: output and input shape of each module by ``id`` (from one forward
    pass); ``dispatch`` writes a sub-module's forward (the emitter registry of :mod:`.source`);
    ``is_known`` says whether a module has an emitter (else it is traced).
    """

    shapes: dict[int, Shape]
    inputs: dict[int, tuple[int, ...]]
    dispatch: ModuleWriter | None
    is_known: Callable[[nn.Module], bool] | None
    lines: list[str] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)  # "F", "PosEnc", "params"
    indent: str = "        "

    def emit(self, code: str, module: nn.Module | None = None, label: str = "") -> None:
        """One ``forward`` statement, commented with ``label`` and ``module``'s output shape."""
        shape = self.shapes.get(id(module)) if module is not None else None
        text = " ".join(t for t in (label, fmt_shape(shape) if shape is not None else "") if t)
        comment = f"  # {text}" if text else ""
        self.lines.append(f"{self.indent}{code}{comment}")

    def note(self, text: str) -> None:
        self.lines.append(f"{self.indent}# {text}")

    def write_module(self, module: nn.Module, ref: str, src: Var, dst: str, where: str) -> Var:
        """Write ``module``'s forward (reached as ``ref``, at ``where`` in the model) on the
        variable(s) ``src`` into ``dst``; returns the variable(s) holding its output."""
        assert self.dispatch is not None, "a SourceWriter made without an emitter dispatch"
        return self.dispatch(self, module, ref, src, dst, where)


def fmt_shape(shape: Shape) -> str:
    """``[B, C, H, W]`` for one shape, ``k x [...]`` for a list of equal shapes."""
    if isinstance(shape, list):
        shapes = {fmt_shape(s) for s in shape}
        return f"{len(shape)} x {shapes.pop()}" if len(shapes) == 1 else ", ".join(
            fmt_shape(s) for s in shape)
    return "[" + ", ".join(["B", *map(str, shape)]) + "]"


def child_ref(parent: str, name: str) -> str:
    """Python access to a child: ``.name`` where that is safe, ``[3]`` / ``["name"]`` otherwise."""
    if name.isdigit():
        return f"{parent}[{name}]"
    if name.isidentifier() and not keyword.iskeyword(name) and not hasattr(nn.Module, name):
        return f"{parent}.{name}"
    return f"{parent}[{name!r}]"


def one(src: Var, what: str) -> str:
    """The single tensor variable ``src`` (a list of them stops the export)."""
    if isinstance(src, list):
        raise UnsupportedExport(f"format py unsupported for this architecture: {what} expects "
                                f"one tensor, found a list of {len(src)}")
    return src


def parts(src: Var, what: str) -> list[str]:
    """The list of tensor variables ``src`` (one tensor stops the export)."""
    if not isinstance(src, list):
        raise UnsupportedExport(f"format py unsupported for this architecture: {what} expects "
                                f"a list of tensors, found one tensor")
    return src


# -- the file ---------------------------------------------------------------------------------------
_SLOTS = '''

class Slots(nn.Module):
    """Sub-modules under the names the workbench compiler gave them ("0", "branches" ...), so that
    state_dict keys match its model; ``slots[3]`` and ``slots.branches`` read them back."""

    def __init__(self, slots: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, module in slots.items():
            self.add_module(name, module)

    def __getitem__(self, name: int | str) -> nn.Module:
        return self._modules[str(name)]
'''

_SLOTS_PARAMS = _SLOTS.replace(
    "slots: dict[str, nn.Module]) -> None:",
    "slots: dict[str, nn.Module],\n                 params: dict[str, tuple[int, ...]] | None = None) -> None:",
).replace(
    "            self.add_module(name, module)\n",
    "            self.add_module(name, module)\n"
    "        for name, shape in (params or {}).items():  # the values come from the state_dict\n"
    "            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))\n",
)

_POS_ENC = '''

class PosEnc(nn.Module):
    """Learnable additive positional encoding: one value per non-batch element."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, *shape))
'''


def render_file(arch: Architecture, model: nn.Module, init: list[str], w: SourceWriter) -> str:
    """The whole ``.py`` file: docstring, imports, the architecture's constants, the helper
    classes ``w`` needs, and ``class Network`` with ``init`` lines and ``w``'s forward lines."""
    n_params = sum(p.numel() for p in model.parameters())
    in_shape = ", ".join(map(str, arch.input_shape))
    imports = ["import torch"]
    if "F" in w.needs:
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    chunks = [arch.text[i:i + 88] for i in range(0, len(arch.text), 88)] or [""]
    text = "\n".join(f"    {c!r}" for c in chunks)
    header = f'''"""{arch.space} architecture {arch.hash}, exported by the NAS workbench.

Standalone PyTorch: needs only torch. ``Network`` takes [B, {in_shape}] and returns
[B, {arch.num_classes}] logits ({n_params:,} parameters). Its state_dict keys are those of the
workbench's compiled model, so exported weights load with ``strict=True``::

    from safetensors.torch import load_file
    model = Network()
    model.load_state_dict(load_file("weights.safetensors"))
    model.eval()
"""

from __future__ import annotations

{chr(10).join(imports)}

SPACE = {arch.space!r}
SPACE_VERSION = {arch.version!r}
ARCHITECTURE = (
{text}
)
INPUT_SHAPE = {tuple(arch.input_shape)!r}
NUM_CLASSES = {arch.num_classes}
'''
    body = '''

class Network(nn.Module):
    """The architecture above: backbone written out operation by operation, then the head."""

    def __init__(self) -> None:
        super().__init__()
''' + ("\n".join(init) if init else "        pass") + '''

    def forward(self, x: torch.Tensor) -> torch.Tensor:
''' + "\n".join(w.lines) + "\n"
    helpers = (_SLOTS_PARAMS if "params" in w.needs else _SLOTS) + (
        _POS_ENC if "PosEnc" in w.needs else "")
    return header.lstrip("\n") + helpers + body

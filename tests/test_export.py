"""Exports: every format, loaded back, computes what the compiled model computes.

Cases: the four einspace seeds (3x32x32), 50 random einspace samples (3x16x16) and a few samples
of every other registered space that compiles (DSL/tree spaces are picked up automatically).
``-m "not slow"`` keeps TorchScript/torch.export/ONNX for 8 random samples and one sample per other
space (the full matrix takes a few minutes on two cores).
"""

from __future__ import annotations

import ast
import functools
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from workbench import ops
from workbench.compiler import compile_model
from workbench.errors import InvalidArchitecture, WorkbenchError
from workbench.export import (
    UnsupportedExport,
    build_model,
    export,
    export_bytes,
    load_weights,
    to_python_source,
)
from workbench.spaces import from_json, get_space, list_spaces

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"
ATOL = 1e-5
SEEDS = ("resnet18", "wrn16_4", "vit", "mixer")
N_RANDOM = 50
OTHER_SAMPLES = 3


def _case_ids() -> list[str]:
    ids = [f"seed-{s}" for s in SEEDS] + [f"einspace-{i}" for i in range(N_RANDOM)]
    for entry in list_spaces():
        if entry.name != "einspace":
            ids += [f"space-{entry.name}-{i}" for i in range(OTHER_SAMPLES)]
    return ids


CASES = _case_ids()


@functools.cache
def case(cid: str):
    """(arch, model in eval mode, input batch of 3, reference logits) for a case id."""
    if cid.startswith("seed-"):
        arch = get_space("einspace", (3, 32, 32), 10).seed(cid[5:])
    elif cid.startswith("einspace-"):
        arch = get_space("einspace", (3, 16, 16), 10).sample(random.Random(int(cid[9:])))
    else:
        name, i = cid[6:].rsplit("-", 1)
        entry = next(e for e in list_spaces() if e.name == name)
        arch = get_space(name, entry.example_input, 10).sample(random.Random(int(i)))
    try:
        model = build_model(arch, seed=0)
    except InvalidArchitecture as exc:
        if "compiler builder" in str(exc):  # an example grammar with no network behind it
            pytest.skip(f"space {arch.space} does not compile to a network: {exc}")
        raise
    x = torch.randn(3, *arch.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
    return arch, model, x, ref


def _heavy(cid: str, fmt: str) -> bool:
    """The quick subset keeps every format on a few small cases and the cheap formats on all."""
    if fmt not in ("torchscript", "pt2", "onnx"):
        return False
    if cid.startswith("seed-"):
        return True
    if cid.startswith("einspace-"):
        return int(cid[9:]) >= 8
    return not cid.endswith("-0")


def _params(fmt: str):
    return [pytest.param(c, marks=pytest.mark.slow) if _heavy(c, fmt) else c for c in CASES]


def _close(y: torch.Tensor, ref: torch.Tensor) -> None:
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, atol=ATOL, rtol=0)


# -- per-format round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("cid", _params("weights"))
def test_weights_roundtrip_and_reproducible(cid, tmp_path):
    arch, model, x, ref = case(cid)
    a = export(arch, "weights", tmp_path / "a.safetensors")
    b = export(arch, "weights", tmp_path / "b.safetensors")
    assert a.read_bytes() == b.read_bytes()  # same seed, same bytes
    state = load_weights(a)
    fresh = compile_model(arch, seed=123)
    fresh.load_state_dict(state, strict=True)
    with torch.no_grad():
        _close(fresh.eval()(x), ref)


@pytest.mark.parametrize("cid", _params("torchscript"))
def test_torchscript(cid, tmp_path):
    arch, model, x, ref = case(cid)
    loaded = torch.jit.load(str(export(arch, "torchscript", tmp_path / "m.pt")))
    with torch.no_grad():
        _close(loaded(x), ref)


@pytest.mark.parametrize("cid", _params("pt2"))
def test_torch_export(cid, tmp_path):
    arch, model, x, ref = case(cid)
    program = torch.export.load(str(export(arch, "pt2", tmp_path / "m.pt2")))
    with torch.no_grad():
        _close(program.module()(x), ref)  # batch 3: the export example had 2, so it is dynamic


@pytest.mark.parametrize("cid", _params("onnx"))
def test_onnx(cid, tmp_path):
    import onnx
    import onnxruntime as ort

    arch, model, x, ref = case(cid)
    path = export(arch, "onnx", tmp_path / "m.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    _close(torch.from_numpy(y), ref)


@pytest.mark.parametrize("cid", CASES)
def test_json(cid, tmp_path):
    arch, *_ = case(cid)
    path = export(arch, "json", tmp_path / "a.json", metrics={"val_accuracy": 0.5})
    data = json.loads(path.read_text())
    assert {k: data[k] for k in arch.to_dict()} == arch.to_dict()
    assert data["metrics"] == {"val_accuracy": 0.5} and data["seed"] == 0
    assert from_json(data) == arch
    if arch.space == "einspace":  # usable as a seed architecture
        assert get_space("einspace", (3, 8, 8), 2).resolve(str(path)) == arch


# -- standalone .py: ruff-clean, runs where only torch is importable ------------------------------
_RUNNER = textwrap.dedent('''
    import importlib.abc
    import importlib.util
    import json
    import os
    import sys

    PROJECT = ("workbench", "search_spaces", "storage", "ui")


    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in PROJECT:
                raise ImportError(f"project module {name} is not available here")
            return None


    sys.meta_path.insert(0, Block())
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != sys.argv[2]]
    import torch

    try:
        import workbench  # noqa: F401
        sys.exit("the project is importable")
    except ImportError:
        pass
    results = {}
    for cid, src, blob in json.load(open(sys.argv[1])):
        try:
            spec = importlib.util.spec_from_file_location("exported_" + str(len(results)), src)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            net = module.Network()
            data = torch.load(blob, weights_only=True)
            net.load_state_dict(data["state"], strict=True)
            with torch.no_grad():
                y = net.eval()(data["x"])
            results[cid] = float((y - data["y"]).abs().max()) if y.shape == data["y"].shape \\
                else f"shape {tuple(y.shape)}"
        except Exception as exc:
            results[cid] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(results))
''')


@pytest.fixture(scope="module")
def py_results(request, tmp_path_factory):
    """Export every selected case as .py, ruff-check them together and run them in one isolated
    interpreter; returns {case: (source, ruff output, max |diff| or error)}."""
    wanted = [item.callspec.params["cid"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_py_source"]
    tmp = tmp_path_factory.mktemp("py")
    jobs, sources = [], {}
    for cid in wanted:
        try:
            arch, model, x, ref = case(cid)
        except pytest.skip.Exception:
            continue
        src = tmp / f"net_{len(jobs)}.py"
        export(arch, "py", src)
        blob = tmp / f"net_{len(jobs)}.pt"
        torch.save({"state": model.state_dict(), "x": x, "y": ref}, blob)
        jobs.append((cid, str(src), str(blob)))
        sources[cid] = src
    ruff = subprocess.run([str(RUFF), "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), *map(str, sources.values())],
                          capture_output=True, text=True, cwd=tmp)
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    (tmp / "runner.py").write_text(_RUNNER)
    run = subprocess.run([sys.executable, "-I", str(tmp / "runner.py"), str(tmp / "jobs.json"),
                          str(ROOT)], capture_output=True, text=True, cwd=tmp, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    return {cid: (sources[cid].read_text(), ruff.stdout, results.get(cid))
            for cid in sources}


@pytest.mark.parametrize("cid", CASES)
def test_py_source(cid, py_results):
    case(cid)  # skips the cases that do not compile
    source, ruff_out, result = py_results[cid]
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert imports <= {"torch", "__future__"}
    name = next(p for p in ruff_out.split() if p.endswith(".py")) if ".py:" in ruff_out else None
    assert name is None, f"ruff: {ruff_out[:2000]}"
    assert isinstance(result, float), result
    assert result <= ATOL


def test_py_source_is_readable():
    arch = get_space("einspace", (3, 16, 16), 10).seed("resnet18")
    src = to_python_source(arch)
    assert "class Network(nn.Module):" in src and "def forward(self, x: torch.Tensor)" in src
    assert "nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in src
    assert "x = x_0 + x  # [B, 64, 8, 8]" in src  # residual add with its shape
    assert "x = x.mean(dim=(2, 3))" in src  # the head


# -- clear errors for what a format cannot represent ----------------------------------------------
class _DataDependent(nn.Module):
    """A forward whose control flow depends on values: no static source can be written."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return x


def test_py_unsupported_module_is_a_clear_error():
    arch = get_space("einspace", (3, 4, 16), 10).parse("sequential[computation[linear(16)], "
                                                       "computation[relu]]")
    model = ops.Network(ops.Chain(_DataDependent()), ops.Head((3, 4, 16), 10))
    with pytest.raises(UnsupportedExport) as err:
        to_python_source(arch, model)
    msg = str(err.value)
    assert "format py unsupported for this architecture" in msg
    assert "self.backbone[0]" in msg and "_DataDependent" in msg and "\n" not in msg


def test_custom_forward_is_traced_into_source():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.scale = nn.Parameter(torch.full((16,), 0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.fc(x)) * x[:, :, :, :16] * self.scale

    arch = get_space("einspace", (3, 4, 16), 10).parse("sequential[computation[linear(16)], "
                                                       "computation[relu]]")
    torch.manual_seed(0)
    model = ops.Network(ops.Chain(Gate(), nn.ReLU()), ops.Head((3, 4, 16), 10)).eval()
    src = to_python_source(arch, model)
    namespace: dict = {}
    exec(compile(src, "gate.py", "exec"), namespace)
    net = namespace["Network"]()
    net.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 4, 16)
    with torch.no_grad():
        _close(net.eval()(x), model(x))
    assert "torch.sigmoid(" in src and "[:, :, :, :16]" in src


def test_mismatched_weights_are_a_clear_error():
    space = get_space("einspace", (3, 8, 8), 10)
    a = space.parse("sequential[computation[linear(16)], computation[relu]]")
    b = space.parse("sequential[computation[linear(32)], computation[relu]]")
    with pytest.raises(InvalidArchitecture, match="expected the 4 tensors of architecture"):
        build_model(a, state_dict=compile_model(b).state_dict())


def test_bad_format_and_unwritable_path(tmp_path):
    arch = get_space("einspace", (3, 8, 8), 10).parse("sequential[computation[linear(16)], "
                                                      "computation[relu]]")
    with pytest.raises(WorkbenchError, match="expected one of json, py"):
        export(arch, "keras", tmp_path / "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WorkbenchError, match="expected a writable location"):
        export(arch, "json", blocker / "x.json")
    with pytest.raises(WorkbenchError, match="found a directory"):
        export(arch, "json", tmp_path)


def test_seed_changes_weights_identically_in_every_format(tmp_path):
    arch = get_space("einspace", (3, 8, 8), 10).parse("sequential[computation[linear(16)], "
                                                      "computation[relu]]")
    w3 = load_weights(export(arch, "weights", tmp_path / "w3.safetensors", seed=3))
    w0 = load_weights(export(arch, "weights", tmp_path / "w0.safetensors", seed=0))
    assert not torch.equal(w3["backbone.0.weight"], w0["backbone.0.weight"])
    ts = torch.jit.load(str(export(arch, "torchscript", tmp_path / "m.pt", seed=3)))
    assert all(torch.equal(ts.state_dict()[k], v) for k, v in w3.items())


def test_svg(tmp_path):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("graphviz 'dot' is not installed")
    arch = get_space("einspace", (3, 16, 16), 10).seed("resnet18")
    assert b"<svg" in export(arch, "svg", tmp_path / "a.svg").read_bytes()


def test_one_format_table_feeds_names_suffixes_weights_and_the_cli(tmp_path):
    import dataclasses

    from workbench.cli.export import FORMAT_HELP
    from workbench.export import FORMAT_TABLE, FORMATS, SUFFIXES, WEIGHTED, get_format

    arch = get_space("einspace", (3, 8, 8), 10).parse("sequential[computation[linear(16)], "
                                                      "computation[relu]]")
    assert FORMATS == tuple(FORMAT_TABLE) and FORMAT_HELP == " | ".join(FORMATS)
    assert dict(SUFFIXES) == {n: f.suffix for n, f in FORMAT_TABLE.items()}
    assert WEIGHTED == {"torchscript", "pt2", "onnx", "weights"}
    assert len(set(SUFFIXES.values())) == len(FORMATS)  # a suffix names its format
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_format("json").suffix = ".txt"  # type: ignore[misc]
    # a weighted format's bytes follow the seed; the others do not hold weights
    for fmt in ("weights", "py"):
        a, b = (export_bytes(arch, fmt, seed=s) for s in (0, 1))
        assert (a != b) == get_format(fmt).weighted, fmt


def test_export_bytes_json_needs_no_model():
    arch = get_space("einspace", (3, 8, 8), 10).parse("sequential[computation[linear(16)], "
                                                      "computation[relu]]")
    assert json.loads(export_bytes(arch, "json"))["hash"] == arch.hash


# -- CLI ------------------------------------------------------------------------------------------
SMALL = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from workbench.cli import main; main()",
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def _one_error_line(run: subprocess.CompletedProcess, *needles: str) -> None:
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_json_reloads_with_info(tmp_path):
    out = tmp_path / "a.json"
    run = cli("export", SMALL, "--space", "einspace", "--input", "3,8,8", "--classes", "10",
              "--format", "json", "--out", str(out))
    assert run.returncode == 0, run.stderr
    arch = get_space("einspace", (3, 8, 8), 10).parse(SMALL)
    assert from_json(out.read_text()) == arch
    info = cli("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["hash"] == arch.hash


def test_cli_py_and_onnx_with_seed(tmp_path):
    import onnxruntime as ort

    arch = get_space("einspace", (3, 8, 8), 10).parse(SMALL)
    run = cli("export", SMALL, "--input", "3,8,8", "-f", "py", "-o", str(tmp_path / "n.py"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "n.py").read_text() == to_python_source(arch)
    run = cli("export", SMALL, "--input", "3,8,8", "-f", "onnx", "-o", str(tmp_path / "n.onnx"),
              "--seed", "5")
    assert run.returncode == 0, run.stderr
    x = torch.randn(2, 3, 8, 8)
    session = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        _close(torch.from_numpy(y), compile_model(arch, seed=5).eval()(x))


def test_cli_errors(tmp_path):
    _one_error_line(cli("export", "sequential[computation[linear(16)]", "--input", "3,8,8",
                        "-f", "json", "-o", str(tmp_path / "a.json")), "line 1, column")
    _one_error_line(cli("export", SMALL, "--input", "3,8,8", "-f", "keras", "-o",
                        str(tmp_path / "a.k")), "--format", "expected one of json", "'keras'")
    blocker = tmp_path / "file"
    blocker.write_text("")
    _one_error_line(cli("export", SMALL, "--input", "3,8,8", "-f", "json", "-o",
                        str(blocker / "a.json")), "--out", "writable", str(blocker))
    _one_error_line(cli("export", "-f", "json", "-o", str(tmp_path / "a.json")),
                    "expected ARCH", "--study")


def test_cli_study_trial(tmp_path):
    from storage import Storage

    url = f"sqlite:///{tmp_path / 'wb.db'}"
    arch = get_space("einspace", (3, 8, 8), 10).parse(SMALL)
    trained = export_bytes(arch, "weights", seed=7)  # stands in for trained weights
    with Storage(url) as st:
        st.create_study("s", space="einspace", task="synthetic", searcher="random",
                        objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                        config={"input_shape": [3, 8, 8], "num_classes": 10}, seed=0)
        for n in range(2):
            st.create_trial("s", arch_hash=arch.hash, arch_text=arch.text, space="einspace",
                            arch_decisions=[[d.path, d.choice] for d in arch.decisions])
            st.finish_trial("s", n, state="complete", metrics={"val_accuracy": 0.75})
        st.put_artifact("s", 0, "weights.safetensors", trained)

    run = cli("export", "--study", "s", "--trial", "0", "-f", "weights", "-o",
              str(tmp_path / "t0.safetensors"), "--storage", url)
    assert run.returncode == 0 and "note" not in run.stderr, run.stderr
    got, want = load_weights(tmp_path / "t0.safetensors"), compile_model(arch, seed=7).state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)

    run = cli("export", "--study", "s", "--trial", "1", "-f", "json", "-o",
              str(tmp_path / "t1.json"), "--storage", url)
    assert run.returncode == 0, run.stderr
    data = json.loads((tmp_path / "t1.json").read_text())
    assert data["hash"] == arch.hash and data["metrics"] == {"val_accuracy": 0.75}

    run = cli("export", "--study", "s", "--trial", "1", "-f", "weights", "-o",
              str(tmp_path / "t1.safetensors"), "--storage", url, "--seed", "2")
    assert run.returncode == 0 and "no stored weights" in run.stderr, run.stderr
    got, want = load_weights(tmp_path / "t1.safetensors"), compile_model(arch, seed=2).state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)

    _one_error_line(cli("export", "--study", "s", "--trial", "9", "-f", "json", "-o",
                        str(tmp_path / "t9.json"), "--storage", url), "9")

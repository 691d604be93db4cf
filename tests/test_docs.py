"""Every code block in README.md and docs/*.md runs in the test suite.

- ``python`` blocks run, in order, one namespace per file, in a scratch working directory (a block
  that writes a module, marked by a first line ``# file: NAME.py``, is saved under that name
  instead, so later blocks and commands can import it).
- Shell blocks: every ``workbench ...`` command is parsed by the real CLI (the command exists,
  every option exists and its value has the right type). Blocks whose commands are cheap enough
  are run for real: those under a heading or line marked ``<!-- run -->`` immediately before the
  block. Other lines (``make``, ``ray start``, ``export``) are prose for a shell, not checked.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<marker><!-- run -->\s*\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
                   re.M | re.S)


def blocks(path: Path) -> list[tuple[str, str, bool, int]]:
    """(language, body, run-for-real, line) of every fenced block."""
    text = path.read_text()
    return [(m["lang"] or "", m["body"], bool(m["marker"]), text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def commands(body: str) -> list[list[str]]:
    """The ``workbench`` command lines of a shell block, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in joined.splitlines():
        if not line.split() or line.split()[0] != "workbench":
            continue  # prose, a layout listing, another program
        words = shlex.split(line, comments=True)
        if words and words[0] == "workbench":
            out.append(words[1:])
    return out


def check_parses(args: list[str]) -> None:
    """Parse a command line with the real CLI, without running it."""
    import typer.main

    from workbench.cli import _load_commands, app

    _load_commands()
    group = typer.main.get_command(app)
    ctx = group.make_context("workbench", [], resilient_parsing=True)
    name, *rest = args
    cmd = group.get_command(ctx, name)
    assert cmd is not None, f"no command {name!r}"
    cmd.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_shell_commands_in_docs_parse(path):
    for lang, body, _, line in blocks(path):
        if lang in ("python", "toml", "json", "yaml"):
            continue
        for args in commands(body):
            try:
                check_parses(args)
            except Exception as exc:  # click's usage errors, unknown commands
                pytest.fail(f"{path.name}:{line}: `workbench {' '.join(args)}`: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_code_blocks_in_docs_run(path, tmp_path, monkeypatch):
    found = blocks(path)
    if not any(lang == "python" or marked for lang, _, marked, _ in found):
        pytest.skip(f"{path.name} has no python block and no block marked to run")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = {**os.environ, "WORKBENCH_STORAGE": f"sqlite:///{tmp_path / 'docs.db'}",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    monkeypatch.setenv("WORKBENCH_STORAGE", env["WORKBENCH_STORAGE"])
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for lang, body, marked, line in found:
        first = body.splitlines()[0] if body.strip() else ""
        if lang == "python" and first.startswith("# file: "):
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(body)
        elif lang == "python":
            try:
                exec(compile(body, f"{path.name}:{line}", "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"{path.name}:{line}: the python block raised "
                            f"{type(exc).__name__}: {exc}")
        elif marked:
            for args in commands(body):
                proc = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=tmp_path,
                                      env=env, capture_output=True, text=True, timeout=600)
                assert proc.returncode == 0, (f"{path.name}:{line}: `workbench "
                                              f"{' '.join(args)}` exited {proc.returncode}: "
                                              f"{proc.stderr.strip()[-500:]}")

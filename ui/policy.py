"""What a UI user may make the server do: the serving policy, set when the UI starts.

The web UI can be shared (``--host 0.0.0.0 --auth ...``), so what its users type is confined:

* custom evaluators (``module:function``) and ``module:function`` spaces import and run code on
  the server: only the modules named with ``--allow-evaluators`` may be named, none by default;
* task paths (``folder:PATH``, ``npz:PATH`` ...) and architecture files must lie inside the data
  root (``--data-root``, default the working directory); outside it the answer is the same
  whether or not the path exists.

>>> p = ServePolicy(frozenset({"mymod"}), Path("/data"))
>>> p.check_evaluator("mymod:score")
>>> p.check_evaluator("this:s")
Traceback (most recent call last):
...
workbench.errors.ConfigError: evaluator this:s: this UI server imports no module 'this' (custom evaluators run code on the server: start it with --allow-evaluators this)
>>> p.check_task("folder:/etc")
Traceback (most recent call last):
...
workbench.errors.ConfigError: task folder:/etc: expected a path inside the UI's data root
>>> p.check_task("npz:/data/x.npz")
'npz:/data/x.npz'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import ConfigError


@dataclass(frozen=True)
class ServePolicy:
    allow_evaluators: frozenset[str] = frozenset()
    data_root: Path = field(default_factory=Path.cwd)

    def _module_allowed(self, spec: str, what: str) -> None:
        module = spec.partition(":")[0].strip()
        if module.split(".")[0] not in self.allow_evaluators and module not in self.allow_evaluators:
            raise ConfigError(f"{what} {spec}: this UI server imports no module {module!r} "
                              f"(custom evaluators run code on the server: start it with "
                              f"--allow-evaluators {module})")

    def check_evaluator(self, spec: str | None) -> None:
        if spec:
            self._module_allowed(spec, "evaluator")

    def check_space(self, name: str) -> None:
        if ":" in name:
            self._module_allowed(name, "space")

    def inside(self, path: str, what: str) -> Path:
        root = self.data_root.resolve()
        full = (root / os.path.expanduser(path)).resolve()
        if full != root and root not in full.parents:
            raise ConfigError(f"{what}: expected a path inside the UI's data root")
        return full

    def check_task(self, task: str) -> str:
        """The task spec with its path resolved inside the data root."""
        name, sep, path = task.partition(":")
        if not sep:
            return task
        return f"{name}:{self.inside(path, f'task {task}')}"

    def check_arch_text(self, text: str) -> None:
        """An architecture given as a file must lie inside the data root."""
        looks_like_file = text.endswith(".json") or ("[" not in text and "/" in text)
        if looks_like_file:
            self.inside(text, "architecture file")


_POLICY = ServePolicy()


def current() -> ServePolicy:
    return _POLICY


def set_policy(policy: ServePolicy) -> None:
    """Set by :func:`ui.app.build_app` (one UI server per process)."""
    global _POLICY
    _POLICY = policy

"""NAS workbench: search spaces, searchers, studies, evaluation, export, diagrams.

``import workbench as wb`` is cheap (nothing heavy is imported until used) and gives the
notebook API (see docs/api.md)::

    space = wb.get_space("quickstart", (1, 8, 8), 10)
    study = wb.create_study("s1", space="quickstart", task="digits", trials=20)
    wb.run_study(study)
    front = wb.pareto(study)
    wb.export(study.architecture(front.front[0].number), "py", "best.py")

>>> import workbench as wb
>>> sorted(set(wb.__all__) - set(dir(wb))) == []
True
>>> wb.get_space("quickstart", (1, 8, 8), 10).size()
936
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it (imported on first use)
_EXPORTS = {
    "Architecture": "workbench.architecture", "Decision": "workbench.architecture",
    "Space": "workbench.spaces", "get_space": "workbench.spaces",
    "register_space": "workbench.spaces", "list_spaces": "workbench.spaces",
    "from_json": "workbench.spaces",
    "Objective": "workbench.searchers", "get_searcher": "workbench.searchers",
    "list_searchers": "workbench.searchers",
    "StudyConfig": "workbench.study", "Study": "workbench.api",
    "create_study": "workbench.api", "run_study": "workbench.api", "load_study": "workbench.api",
    "open_storage": "workbench.api", "evaluate": "workbench.api", "diagram": "workbench.api",
    "Budget": "workbench.trainer", "get_task": "workbench.tasks",
    "TrialState": "storage.records", "StudyStatus": "storage.records",
    "WorkbenchError": "workbench.errors",
}
# the callable modules: ``wb.export(arch, fmt, out)`` and ``wb.pareto(study)``
_MODULES = {"export": "workbench.export", "pareto": "workbench.pareto"}

__all__ = [
    "Architecture", "Budget", "Decision", "Objective", "Space", "Study", "StudyConfig",
    "StudyStatus", "TrialState", "WorkbenchError", "create_study", "diagram", "evaluate",
    "export", "from_json", "get_searcher", "get_space", "get_task", "list_searchers",
    "list_spaces", "load_study", "open_storage", "pareto", "register_space", "run_study",
]

if TYPE_CHECKING:
    from storage.records import StudyStatus, TrialState
    from workbench import export, pareto
    from workbench.api import (
        Study,
        create_study,
        diagram,
        evaluate,
        load_study,
        open_storage,
        run_study,
    )
    from workbench.architecture import Architecture, Decision
    from workbench.errors import WorkbenchError
    from workbench.searchers import Objective, get_searcher, list_searchers
    from workbench.spaces import Space, from_json, get_space, list_spaces, register_space
    from workbench.study import StudyConfig
    from workbench.tasks import get_task
    from workbench.trainer import Budget


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

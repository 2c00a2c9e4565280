"""YAML-configured experiments: configuration, runner, report.

``clvmodels run CONFIG`` is :func:`load_config` followed by :func:`run_experiment`; the
run directory it writes is described in :mod:`clvmodels.experiments.runner`, and
:func:`build_report` turns it into one self-contained ``report.html``. Names load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ExperimentConfig": "clvmodels.experiments.config",
    "apply_overrides": "clvmodels.experiments.config",
    "config_json_schema": "clvmodels.experiments.config",
    "load_config": "clvmodels.experiments.config",
    "parse_config": "clvmodels.experiments.config",
    "RunResult": "clvmodels.experiments.runner",
    "run_experiment": "clvmodels.experiments.runner",
    "build_report": "clvmodels.experiments.report",
    "render_report": "clvmodels.experiments.report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

"""How shipped files (the results JSON, the model card, metadata) name what made them:
a checkpoint and every local path by its base name, an API call by its settings."""

from __future__ import annotations

import os

from export.job.config import PATH_SETTINGS, ExportConfig
from tfresnet.data import sources
from tfresnet.training.runschema import RUN_FILES


def shipped_checkpoint(path: str | None) -> str | None:
    """How shipped files name a ``--checkpoint``: its base name (a run file such as
    ``model.keras`` with its run folder's), never the local path."""
    if path is None:
        return None
    base = sources.shipped_name(path)
    if base in (RUN_FILES.model, RUN_FILES.best):
        return f"{sources.shipped_name(os.path.dirname(os.path.abspath(path)))}/{base}"
    return base


def shipped_call(plan) -> str:
    """How shipped files name an ``export.tflite.export(...)`` call: the model given
    (a path by its base name), then every setting that differs from ``ExportConfig()``
    as the plan resolved it (paths by their base names, never a local path)."""
    path = plan.source and plan.source.path
    what = ("None" if plan.source is None or plan.imagenet  # epochs=0: loaded by the plan
            else repr(shipped_checkpoint(path)) if path else "model")
    default = ExportConfig().settings()
    given = [f"{key}={_shipped_value(key, value)!r}"
             for key, value in plan.config.settings().items() if value != default[key]]
    return f"export.tflite.export({', '.join([what, *given])})"


def _shipped_value(key, value):
    if key in PATH_SETTINGS and value is not None:
        return sources.shipped_name(os.fspath(value))
    return list(value) if isinstance(value, tuple) else value

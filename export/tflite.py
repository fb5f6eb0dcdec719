"""``python -m export.tflite``: the product's export job (``--help`` for the flags).

Model (trained here on the bundled digits unless ``--checkpoint``) -> quantization-aware
fine-tuning -> verified full-INT8 ``.tflite`` with metadata, beside a float32 and a
post-training INT8 baseline, ``labels.txt``, a ``models.json`` manifest and a results
JSON in ``android_demo_assets/`` (or ``--out``), and a comparison table.

From Python (a notebook): ``export(model_or_run, config=None, **overrides)`` returns an
:class:`ExportResult`; :class:`ExportConfig` holds every setting's default.

Only the entry point and the door live here: the command (flags, ``main``) is
:mod:`export.job.command`, the job :mod:`export.job.pipeline`, its settings
:mod:`export.job.config`, the conversion library :mod:`export.convert`.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from export.job.command import PROG, main  # noqa: F401
    from export.job.config import ExportConfig  # noqa: F401
    from export.job.pipeline import export  # noqa: F401
    from export.job.result import ExportResult  # noqa: F401

if __name__ == "__main__":  # main checks the flags before TensorFlow loads
    from export.job.command import PROG, main
    from tfresnet.utils import cli

    cli.run(main, prog=PROG)

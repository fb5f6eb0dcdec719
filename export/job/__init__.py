"""The export job behind ``python -m export.tflite``: model -> QAT -> verified INT8 files.

* :mod:`~export.job.config`: the settings, ``ExportConfig``, checked once;
* :mod:`~export.job.plan`: the settings resolved, the model and data loaded, ``ExportPlan``;
* :mod:`~export.job.train_steps`: the float training and the QAT fine-tuning;
* :mod:`~export.job.evaluate`: the Keras models and the files on the held-out data;
* :mod:`~export.job.file_metadata`: the metadata each file carries;
* :mod:`~export.job.manifest_fields`: a file's ``models.json`` entry, the header;
* :mod:`~export.job.shipped`: how shipped files name local paths and the call;
* :mod:`~export.job.table`: the table printed at the end;
* :mod:`~export.job.progress`: the progress lines;
* :mod:`~export.job.result`: ``ExportResult``, the figures; the results JSON from it;
* :mod:`~export.job.class_report`, :mod:`~export.job.model_card`: per-class figures, the card;
* :mod:`~export.job.manifest`: the output folder and its ``models.json``;
* :mod:`~export.job.pipeline`: ``export``, the steps in order (``run``);
* :mod:`~export.job.command`: ``python -m export.tflite``, the flags (checked before
  TensorFlow loads) and ``main``.
"""

from typing import TYPE_CHECKING

from tfresnet.utils.lazy import front_door

__getattr__, __dir__ = front_door(__name__)  # the names below, imported on first use

if TYPE_CHECKING:  # the public names, declared once (read by front_door too)
    from export.job.command import PROG, build_parser, main  # noqa: F401
    from export.job.config import ExportConfig  # noqa: F401
    from export.job.pipeline import export, run  # noqa: F401
    from export.job.plan import ExportPlan, plan_export  # noqa: F401
    from export.job.result import ExportResult  # noqa: F401

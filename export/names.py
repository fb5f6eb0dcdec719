"""The names an export gives its model's tensors and the files it writes: one owner each.

Tensor names: the app developer reads one name everywhere. The converted model's
signature (``serving_default(image) -> probabilities``), the flatbuffer tensors under
it (what ``Interpreter.get_input_details()`` / ``get_output_details()`` show) and the
metadata's tensor entries all use ``INPUT_NAME`` and ``OUTPUT_NAME``.

The command: ``EXPORT_PROG``, how ``python -m export.tflite`` names itself (its help and
errors) and how ``models.json`` names the tool that wrote it (``generator``).

File names: ``MANIFEST`` and ``LABELS_FILE`` in the export folder (``labels.txt`` is the
run folder's name too, :data:`tfresnet.training.runschema.RUN_FILES`), and the suffixes
of the per-model reports after a file stem.
"""

from __future__ import annotations

from tfresnet.training.runschema import RUN_FILES

EXPORT_PROG = "python -m export.tflite"

SIGNATURE = "serving_default"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"

MANIFEST = "models.json"
LABELS_FILE = RUN_FILES.labels
RESULTS_SUFFIX = "_results.json"
CONFUSION_SUFFIX = "_confusion.png"
MODEL_CARD_SUFFIX = "_MODEL_CARD.md"
QUANT_DEBUG_SUFFIXES = ("_quant_debug.csv", "_quant_debug.json", "_quant_debug.png")
REPORT_SUFFIXES = (RESULTS_SUFFIX, CONFUSION_SUFFIX, MODEL_CARD_SUFFIX, *QUANT_DEBUG_SUFFIXES)

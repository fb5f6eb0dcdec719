"""``python -m export.tflite``: the product's export job (``--help`` for the flags).

Model (trained here on the bundled digits unless ``--checkpoint``) -> quantization-aware
fine-tuning -> verified full-INT8 ``.tflite`` with metadata, beside a float32 and a
post-training INT8 baseline, ``labels.txt``, a ``models.json`` manifest and a results
JSON in ``android_demo_assets/`` (or ``--out``), and a comparison table.

Only the entry point lives here: the job is :mod:`export.pipeline`, the conversion
library :mod:`export.convert`.
"""

from export.pipeline import PROG, main

__all__ = ["PROG", "main"]

if __name__ == "__main__":
    from tfresnet import cli

    cli.run(main, prog=PROG)

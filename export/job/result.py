"""What one export measured and wrote: :class:`ExportResult`, the one owner of its
figures; the results JSON (``STEM_results.json``) is written from it
(:meth:`ExportResult.to_json`), so the two cannot disagree."""

from __future__ import annotations

import dataclasses
import os

from export.job.evaluate import LABELS


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """The figures of one export and the files it wrote.

    Attributes:
      out: the output folder; files: the names written into it (``models.json`` too).
      results_file: the results JSON's name (:attr:`results_path` its path).
      rows: the table's rows, one a model or file (``kind``, ``model``, ``file``, ``ship``,
        ``accuracy``, ``size_bytes``, ``latency_ms``, ``params``, ``macs``, ...).
      held_out_images: the images every accuracy and the agreement are counted on.
      agreement: the shipped INT8 file's top-1 agreement with its Keras model
        (``agreement_with``: ``"qat_keras"``, or ``"float32_keras"`` for a
        post-training file); agreement_test: the gate's record (it passed).
      shipped_file, shipped_model: the file to ship (``STEM_int8.tflite``) and its row.
      warnings: the run's warnings (training health, chance, clear INT8 losses).
      manifest_entries: the ``models.json`` entries of the files written
        (:attr:`manifest_entry`: the shipped file's).
      table: the comparison table as printed.
      details: the rest of the results JSON (settings, data, environment, per-class
        figures, comparisons), as written.
    """

    out: str
    files: tuple
    results_file: str
    rows: tuple
    held_out_images: int
    agreement: float
    agreement_with: str
    agreement_test: dict
    shipped_file: str
    shipped_model: str
    warnings: tuple
    manifest_entries: tuple
    table: str
    details: dict

    @property
    def manifest_entry(self) -> dict:
        """The shipped file's entry in ``models.json``."""
        return next(entry for entry in self.manifest_entries if entry["ship"])

    @property
    def results_path(self) -> str:
        return os.path.join(self.out, self.results_file)

    def accuracy(self, kind: str) -> float | None:
        """The held-out accuracy of one row by kind (``"float32_keras"``, ``"qat_keras"``,
        ``"int8"``, ``"ptq_int8"``, ``"float32"``, ...); None when not measured (no
        labels) or not in this export."""
        row = next((r for r in self.rows if r["kind"] == kind), None)
        return None if row is None else row["accuracy"]

    @property
    def float_accuracy(self) -> float | None:
        """The float Keras model's held-out accuracy."""
        return self.accuracy("float32_keras")

    @property
    def qat_accuracy(self) -> float | None:
        """The QAT Keras model's (None without QAT)."""
        return self.accuracy("qat_keras")

    @property
    def int8_accuracy(self) -> float | None:
        """The shipped INT8 file's."""
        return next(r["accuracy"] for r in self.rows if r["ship"])

    def to_json(self) -> dict:
        """The results JSON's content."""
        return {**self.details, "results_file": self.results_file,
                "held_out_images": self.held_out_images,
                "shipped_file": self.shipped_file, "shipped_model": self.shipped_model,
                f"agreement_int8_vs_{self.agreement_with}": self.agreement,
                "agreement_reference": LABELS[self.agreement_with],
                "agreement_test": self.agreement_test, "warnings": list(self.warnings),
                "rows": [dict(row) for row in self.rows]}

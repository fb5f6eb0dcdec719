"""The comparison table an export prints at the end (and keeps in its result)."""

from __future__ import annotations

from export.convert.int8_errors import worst_text
from export.job import model_card
from export.job.manifest_fields import MIXED_NOTE
from tfresnet.utils import tables


def results_table(rows, agreement, count, reference="QAT Keras", int8="QAT INT8 TFLite",
                  images="held-out images") -> str:
    """The comparison table printed at the end (accuracy "-" where there are no labels;
    the file to ship marked ``*`` and named on the last line)."""
    header = ("model", "file", "size", "params", "MACs", "latency", "accuracy")
    body = []
    for r in rows:
        size = "" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f} MB"
        latency = "" if r["latency_ms"] is None else f"{r['latency_ms']:.2f} ms"
        body.append((r["model"], f"{r['file']} *" if r.get("ship") else r["file"] or "-",
                     size, f"{r['params']:,}", f"{r['macs'] / 1e6:.1f}M", latency,
                     "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"))
    shipped = next((r for r in rows if r.get("ship")), None)
    return (tables.table(header, body, left=2, rule=True)
            + f"\ntop-1 agreement, {int8} vs {reference}: {100 * agreement:.2f}% "
              f"of {count} {images}"
            + (f"\n* the file to ship: {shipped['file']} ({shipped['model']})" if shipped
               else ""))


def table_text(plan, m, rows, agreement, kept, warnings) -> str:
    """The comparison table printed at the end, with its notes: ``m`` is what the
    evaluation measured (the pipeline's ``_Measured``), ``rows`` the table's rows,
    ``kept`` the float epoch kept (``float_kept``), ``warnings`` the run's."""
    table = results_table(rows, agreement, m.count, reference=m.reference.label,
                          int8=m.shipped.label, images=m.images)
    if m.shipped.kind == "ptq_int8":
        table += (f"\nThe post-training file ships as {m.shipped.file}: right on "
                  f"{m.shipped.correct} of {m.count} held-out images, the quantization-aware "
                  f"one ({m.by_kind['int8'].file}) on {m.by_kind['int8'].correct}")
    if kept:
        table += f"\nfloat32 Keras: {model_card.kept_text(kept)} kept (the best held-out accuracy)"
    if not plan.qat:
        table += "\nNo quantization-aware training (qat_epochs=0): post-training INT8 only."
    if plan.config.float_layers:
        table += (f"\n{MIXED_NOTE}: {', '.join(plan.config.float_layers)} in "
                  f"{plan.file('mixed_int8')}")
    if m.debug_rows is not None:
        table += f"\n{worst_text(m.debug_rows)}"
    if m.per_class and m.per_class["text"]:
        table += f"\n{m.per_class['text']}"
    return table + "".join(f"\nWARNING {w}" for w in warnings)

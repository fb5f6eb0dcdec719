"""The model card of an export, ``<stem>_MODEL_CARD.md``, written from its results JSON.

:func:`model_card` reads nothing but the results dict the export writes as
``<stem>_results.json`` (:mod:`export.job.pipeline`), so the card cannot disagree with it:
what an app's reviewer asks for (architecture and paper, parameters and MACs, the data
and its split, the training, each file's quantization, size, latency with the machine
and runtime that measured it, accuracy overall and per class, the agreement, and the
known limits). :func:`environment` is the machine's part, recorded in the results.

Text from the user (class names, data set and file names, the command, warnings that
quote them) is escaped where it lands (:func:`text`, :func:`code`), so a class folder
named ``<img src=x onerror=alert(1)>``, ``[link](javascript:alert(1))`` or ``| pipes |``
reads as its name and never becomes HTML, a link, emphasis or a table column.
"""

from __future__ import annotations

import html
import platform
import re

# Characters that start Markdown inline markup (emphasis, code, links, images, tables,
# strikethrough, escapes); HTML's own (& < > " ') are escaped as entities.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~!])")


def environment() -> dict:
    """The CPU (as /proc/cpuinfo names it), cores and the runtime that timed the files."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version
        runtime_version = version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - a missing distribution record: say unknown
        runtime_version = "unknown"
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "runtime": "LiteRT interpreter (ai_edge_litert) with XNNPACK",
            "runtime_version": runtime_version}


def text(value) -> str:
    """``value`` as literal Markdown text, in a paragraph or a table cell: Markdown's
    markup characters backslash-escaped, HTML's as entities, line breaks as spaces."""
    plain = " ".join(str(value).splitlines())
    return html.escape(_MARKDOWN.sub(r"\\\1", plain), quote=True)


def code(value) -> str:
    """``value`` as a Markdown code span that it cannot close: fenced by more backticks
    than its longest run (CommonMark), line breaks shown as ``\\n``."""
    plain = str(value).replace("\r", "\\r").replace("\n", "\\n")
    fence = "`" * (max((len(run) for run in re.findall("`+", plain)), default=0) + 1)
    pad = " " if plain.startswith("`") or plain.endswith("`") else ""
    return f"{fence}{pad}{plain}{pad}{fence}"


def kept_text(kept: dict | None) -> str:
    """The kept epoch in words: "epoch 3 of 4", "epoch 5 of 6 (phase fine_tune, its
    epoch 2)" (``float_kept`` of the results JSON)."""
    if not kept:
        return "the epoch kept is not recorded"
    words = f"epoch {kept['epoch']}" + (f" of {kept['of']}" if kept.get("of") else "")
    if kept.get("phase"):
        words += f" (phase {kept['phase']}, its epoch {kept['phase_epoch']})"
    return words


def _kept_accuracy(kept) -> str:
    value = kept.get("val_accuracy")
    return "" if value is None else f", {_pct(value)} during training"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def model_card(results: dict) -> str:
    """The Markdown model card of one export's results dict (its results JSON)."""
    r = results
    rows = r["rows"]
    files = [row for row in rows if row["file"]]
    first = rows[0]
    env = r.get("environment") or {}
    lines = [f"# {r['model']} ({', '.join(f'{k}={v}' for k, v in r['model_kwargs'].items()) or 'defaults'}, "
             f"{r['res']}x{r['res']} input): model card", "",
             f"Generated from {code(r.get('results_file', 'the results JSON'))} by "
             f"{code(r['command'])}; every figure below is that file's.", "",
             "## Model", "",
             f"- Architecture: {r['model']}; {r.get('paper') or 'paper not recorded'}.",
             f"- Parameters: {first['params']:,}; multiply-adds per image: "
             f"{first['macs']:,} ({first['macs'] / 1e6:.1f}M).",
             f"- Input: {r['res']}x{r['res']} RGB; normalization (pixel - 128) / 128; "
             f"INT8 file I/O {r['io']}.", "",
             "## Data", ""]
    counts = r.get("class_counts")
    lines += [f"- Data set: {text(r['dataset'])}, {len(r['labels'])} classes "
              f"({', '.join(map(text, r['labels'][:12]))}{', ...' if len(r['labels']) > 12 else ''}).",
              f"- Split (seed {r['seed']}): {r['num_train']:,} training images, "
              f"{r['held_out_images']:,} held out for every figure below."]
    if counts:
        lines.append(f"- Held-out images per class: "
                     f"{', '.join(f'{text(k)}: {v}' for k, v in counts.items())}.")
    if r.get("skipped_images"):
        lines.append(f"- Left out as undecodable: {len(r['skipped_images'])} image(s).")
    lines += ["", "## Training", ""]
    if r.get("checkpoint"):
        lines.append(f"- Float model: {text(r['checkpoint'])}.")
    else:
        lines.append(f"- Float model trained here: {r['float_epochs']} epoch(s), recipe "
                     f"{r.get('recipe') or '-'}, learning rate {r['float_lr']}, "
                     f"{r['batch_size_per_replica']} images per replica, augmentation "
                     f"{r['augment']}.")
    if r.get("weights"):
        lines.append(f"- Started from pretrained weights {text(r['weights'])}; phases: "
                     f"{text(r.get('transfer_phases'))}.")
    if r.get("float_kept"):
        lines.append(f"- Float model kept: {kept_text(r['float_kept'])} (the best held-out "
                     f"accuracy{_kept_accuracy(r['float_kept'])}).")
    lines.append(f"- Quantization: {r['quantization']}" +
                 (f" ({r['qat_epochs']} QAT epoch(s), learning rate {r['qat_lr']})."
                  if r["qat"] else "."))
    lines.append(f"- Calibration: {r['calibration_images']} training images.")
    lines += ["", "## Files", "",
              f"Latency: median of one `invoke()`, {r['threads']} thread(s), the files timed "
              f"side by side, best of the rounds; CPU {text(env.get('cpu', 'unknown'))} "
              f"({env.get('cores', '?')} cores), {env.get('runtime', 'LiteRT')} "
              f"{env.get('runtime_version', '')}.".replace(" .", "."), "",
              "| model | file | weights | activations | size (bytes) | latency | accuracy |",
              "|---|---|---|---|---:|---:|---:|"]
    for row in rows:
        q = row.get("quantization") or {}
        size = "-" if row["size_bytes"] is None else f"{row['size_bytes']:,}"
        lines.append(f"| {row['model']} | {row['file'] or '-'} | {q.get('weights', 'float32')} | "
                     f"{q.get('activations', 'float32')} | {size} | {_ms(row['latency_ms'])} | "
                     f"{_pct(row['accuracy'])} |")
    lines += [""]
    if r.get("shipped_file"):
        lines += [f"**The file to ship: {code(r['shipped_file'])}** ({r['shipped_model']}: "
                  f"of the INT8 files, the one right on the most held-out images).", ""]
    for row in files:
        q = row.get("quantization") or {}
        lines.append(f"- {code(row['file'])}: {q.get('description', '-')}"
                     f"{'; integer-only' if q.get('integer_only') else ''}"
                     f"{'; **the file to ship**' if row.get('ship') else ''}.")
    agreement = {k: v for k, v in r.items() if k.startswith("agreement_int8_vs_")}
    for key, value in agreement.items():
        lines += ["", f"Top-1 agreement of the INT8 file with the {r['agreement_reference']} "
                      f"model: {_pct(value)} of {r['held_out_images']:,} images (required: "
                      f"{_pct(r['min_agreement'])})."]
    if counts:
        lines += ["", "## Accuracy per class", "",
                  "| class | images | " + " | ".join(row["model"] for row in rows) + " |",
                  "|---|---:|" + "---:|" * len(rows)]
        for name, n in counts.items():
            lines.append(f"| {text(name)} | {n} | " + " | ".join(
                _pct((row.get("per_class_accuracy") or {}).get(name)) for row in rows) + " |")
        differs = r.get("classes_int8_differs") or []
        lines += ["", f"Classes where the INT8 file differs from the float model by more "
                      f"than {r['class_difference_points']:g} points: " + (", ".join(
                          f"{text(d['class'])} ({_pct(d['float32_keras'])} -> {_pct(d['int8'])})"
                          for d in differs) or "none") + "."]
    limits = list(r.get("warnings") or [])
    if r.get("accuracy_note"):
        limits.append(r["accuracy_note"])
    lines += ["", "## Known limits", ""]
    lines += [f"- {text(w if isinstance(w, str) else w.get('message', w))}"
              for w in limits] or [
        "- No warning was raised by this run."]
    lines += [f"- Accuracy is measured on {r['held_out_images']:,} held-out images of "
              f"{text(r['dataset'])}; it says nothing about photos unlike them."]
    return "\n".join(lines) + "\n"

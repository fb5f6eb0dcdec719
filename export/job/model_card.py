"""The model card of an export, ``<stem>_MODEL_CARD.md``, written from its results JSON.

:func:`model_card` reads nothing but the results dict the export writes as
``<stem>_results.json`` (:mod:`export.job.pipeline`), so the card cannot disagree with it:
what an app's reviewer asks for (architecture and paper, parameters and MACs, the data
and its split, the training, each file's quantization, size, latency with the machine
and runtime that measured it, accuracy overall and per class, the agreement, and the
known limits). :func:`environment` is the machine's part, recorded in the results.
"""

from __future__ import annotations

import platform


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
             f"Generated from `{r.get('results_file', 'the results JSON')}` by "
             f"`{r['command']}`; every figure below is that file's.", "",
             "## Model", "",
             f"- Architecture: {r['model']}; {r.get('paper') or 'paper not recorded'}.",
             f"- Parameters: {first['params']:,}; multiply-adds per image: "
             f"{first['macs']:,} ({first['macs'] / 1e6:.1f}M).",
             f"- Input: {r['res']}x{r['res']} RGB; normalization (pixel - 128) / 128; "
             f"INT8 file I/O {r['io']}.", "",
             "## Data", ""]
    counts = r.get("class_counts")
    lines += [f"- Data set: {r['dataset']}, {len(r['labels'])} classes "
              f"({', '.join(map(str, r['labels'][:12]))}{', ...' if len(r['labels']) > 12 else ''}).",
              f"- Split (seed {r['seed']}): {r['num_train']:,} training images, "
              f"{r['held_out_images']:,} held out for every figure below."]
    if counts:
        lines.append(f"- Held-out images per class: "
                     f"{', '.join(f'{k}: {v}' for k, v in counts.items())}.")
    if r.get("skipped_images"):
        lines.append(f"- Left out as undecodable: {len(r['skipped_images'])} image(s).")
    lines += ["", "## Training", ""]
    if r.get("checkpoint"):
        lines.append(f"- Float model: {r['checkpoint']}.")
    else:
        lines.append(f"- Float model trained here: {r['float_epochs']} epoch(s), recipe "
                     f"{r.get('recipe') or '-'}, learning rate {r['float_lr']}, "
                     f"{r['batch_size_per_replica']} images per replica, augmentation "
                     f"{r['augment']}.")
    if r.get("weights"):
        lines.append(f"- Started from pretrained weights {r['weights']}; phases: "
                     f"{r.get('transfer_phases')}.")
    lines.append(f"- Quantization: {r['quantization']}" +
                 (f" ({r['qat_epochs']} QAT epoch(s), learning rate {r['qat_lr']})."
                  if r["qat"] else "."))
    lines.append(f"- Calibration: {r['calibration_images']} training images.")
    lines += ["", "## Files", "",
              f"Latency: median of one `invoke()`, {r['threads']} thread(s), the files timed "
              f"side by side, best of the rounds; CPU {env.get('cpu', 'unknown')} "
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
    for row in files:
        q = row.get("quantization") or {}
        lines.append(f"- `{row['file']}`: {q.get('description', '-')}"
                     f"{'; integer-only' if q.get('integer_only') else ''}.")
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
            lines.append(f"| {name} | {n} | " + " | ".join(
                _pct((row.get("per_class_accuracy") or {}).get(name)) for row in rows) + " |")
        differs = r.get("classes_int8_differs") or []
        lines += ["", f"Classes where the INT8 file differs from the float model by more "
                      f"than {r['class_difference_points']:g} points: " + (", ".join(
                          f"{d['class']} ({_pct(d['float32_keras'])} -> {_pct(d['int8'])})"
                          for d in differs) or "none") + "."]
    limits = list(r.get("warnings") or [])
    if r.get("accuracy_note"):
        limits.append(r["accuracy_note"])
    lines += ["", "## Known limits", ""]
    lines += [f"- {w if isinstance(w, str) else w.get('message', w)}" for w in limits] or [
        "- No warning was raised by this run."]
    lines += [f"- Accuracy is measured on {r['held_out_images']:,} held-out images of "
              f"{r['dataset']}; it says nothing about photos unlike them."]
    return "\n".join(lines) + "\n"

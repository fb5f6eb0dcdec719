"""Checks of an export's per-class figures, confusion PNG and model card, shared by
tests/export_job/test_export.py (the QAT export) and tests/conversion/test_formats.py (every format)."""

import json
import pathlib
import re

import pytest
from PIL import Image

from export.job import model_card


def per_class_sums_back(results_path):
    """Each row's per-class accuracy, weighted by the class counts, is its accuracy."""
    saved = json.loads(pathlib.Path(results_path).read_text())
    counts = saved["class_counts"]
    assert sum(counts.values()) == saved["held_out_images"] and len(counts) == 10
    for row in saved["rows"]:
        per_class = row["per_class_accuracy"]
        weighted = sum(per_class[c] * n for c, n in counts.items()) / sum(counts.values())
        assert weighted == pytest.approx(row["accuracy"], abs=1e-12), row["model"]
        assert len(set(per_class.values())) > 1  # real figures, not the overall repeated


def confusion_png_written(out, stem):
    """The float/INT8 confusion PNG: two panels side by side, listed in the results."""
    out = pathlib.Path(out)
    results = json.loads((out / f"{stem}_results.json").read_text())
    image = Image.open(out / f"{stem}_confusion.png")
    assert image.format == "PNG" and image.width > 1.5 * image.height
    assert results["class_counts"] and results["rows"][0]["per_class_accuracy"]


def model_card_matches(out, stem):
    """The model card is the results JSON's rendering, and its tables show its figures."""
    out = pathlib.Path(out)
    saved = json.loads((out / f"{stem}_results.json").read_text())
    card = (out / f"{stem}_MODEL_CARD.md").read_text()
    assert card == model_card.model_card(saved)  # generated from the file alone
    tables = _markdown_tables(card)
    files = {row["model"]: row for row in tables[0]}
    for row in saved["rows"]:
        shown = files[row["model"]]
        assert shown["file"] == (row["file"] or "-")
        assert _number(shown["accuracy"]) == pytest.approx(100 * row["accuracy"], abs=0.005)
        if row["file"]:
            assert int(shown["size (bytes)"].replace(",", "")) == row["size_bytes"]
            assert _number(shown["latency"]) == pytest.approx(row["latency_ms"], abs=0.005)
            assert (shown["weights"], shown["activations"]) == (
                row["quantization"]["weights"], row["quantization"]["activations"])
    per_class = {r["class"]: r for r in tables[1]}  # the names as the card escapes them
    assert set(per_class) == {model_card.text(name) for name in saved["class_counts"]}
    for name, n in saved["class_counts"].items():
        assert int(per_class[model_card.text(name)]["images"]) == n
        for row in saved["rows"]:
            assert _number(per_class[model_card.text(name)][row["model"]]) == pytest.approx(
                100 * row["per_class_accuracy"][name], abs=0.005)
    assert f"{saved['rows'][0]['params']:,}" in card
    assert saved["environment"]["cpu"] in card


def _markdown_tables(text):
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]  # not \|
            if current is None:
                current = {"header": cells, "rows": []}
            elif not set("".join(cells)) <= set("-:"):
                current["rows"].append(dict(zip(current["header"], cells)))
        elif current is not None:
            tables.append(current["rows"])
            current = None
    return tables


def _number(text):
    return float(text.rstrip("%").replace(" ms", ""))

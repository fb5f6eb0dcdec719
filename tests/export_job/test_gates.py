"""The export's decisions sized to the images they saw (``export.job.gates``), the file
to ship, and what its shipped files say: escaped text, base names, one set of files.

No training here (a few ms each); the exports that run them end to end are in
test_export.py and test_export_files.py.
"""

import hashlib
import json
import re

import pytest

from export.job import gates, manifest, model_card
from export.job.command import flag_words, parse, shipped_command
from export.job.evaluate import Variant
from tfresnet.data.sources import shipped_name
from tfresnet.utils import stats

# ----------------------------------------------------------------------------- the one rule


def test_the_tails_are_exact_binomial_tails():
    assert stats.at_most(74, 75, 0.99) == pytest.approx(1 - 0.99 ** 75)  # 0.529
    assert stats.at_least(3, 3, 0.5) == pytest.approx(0.125)
    assert stats.at_least(0, 10, 0.3) == stats.at_most(10, 10, 0.3) == 1.0
    assert stats.paired_p_value(0, 10) == pytest.approx(0.5 ** 10)
    assert stats.paired_p_value(10, 0) == 1.0


@pytest.mark.parametrize("agreeing, count, required, passed", [
    (74, 75, 0.99, True),     # the 98.67%: one image is no evidence at 75
    (35, 36, 0.99, True),     # one disagreement of 36
    (356, 359, 0.99, True),   # 99.16%
    (352, 359, 0.99, True),   # 7 disagreements: P(>= 7 at 1%) = 0.071
    (351, 359, 0.99, False),  # 8: P = 0.030
    (340, 359, 0.99, False),
    (35, 36, 1.0, False),     # --min-agreement 1: any disagreement refuses
    (0, 36, 0.0, True),       # --min-agreement 0: never refuses
    (36, 36, 0.99, True),
])
def test_agreement_gate_refuses_only_a_clear_shortfall(agreeing, count, required, passed):
    record = gates.agreement_check(agreeing, count, required)
    assert record["passed"] is passed
    assert (record["p_value"] >= stats.CLEAR_P_VALUE) is passed
    assert record["p_value"] == pytest.approx(stats.at_most(agreeing, count, required))


def test_agreement_refusal_is_one_line_with_the_count_figures_flag_and_test():
    record = gates.agreement_check(340, 359, 0.99)
    text = str(gates.agreement_refusal(record, file="m_int8.tflite", reference="QAT Keras"))
    assert "\n" not in text
    assert text.startswith("m_int8.tflite agrees with the QAT Keras model on 340 of 359 "
                           "held-out images (94.71%), clearly below min_agreement=0.99")
    assert "one-sided exact binomial test" in text and "nothing was written" in text
    assert text.endswith("min_agreement=0.94 ships it anyway")
    said = flag_words(text)  # the command line's words (README.md shows the line)
    assert "clearly below --min-agreement 0.99: " in said
    assert said.endswith("Try more --calibration images, more --qat-epochs or --qat-epochs 0, "
                         "--float-layers for the worst layers (--debug-quantization names "
                         "them); --min-agreement 0.94 ships it anyway")


def _variant(kind, answers):
    return Variant(kind, top1=list(answers), correct=0)


def _scored(kind, answers, truth):
    v = _variant(kind, answers)
    v.correct = sum(a == t for a, t in zip(answers, truth))
    return v


def test_the_int8_file_right_on_more_images_ships_qat_on_a_tie():
    truth = [0] * 10
    float_ = _scored("float32_keras", [0] * 10, truth)
    qat = _scored("int8", [0] * 7 + [1] * 3, truth)
    ptq = _scored("ptq_int8", [0] * 10, truth)
    assert gates.choose_int8({"float32_keras": float_, "int8": qat, "ptq_int8": ptq}) == "ptq_int8"
    tie = _scored("ptq_int8", [1] * 3 + [0] * 7, truth)
    assert gates.choose_int8({"int8": qat, "ptq_int8": tie}) == "int8"
    assert gates.choose_int8({"int8": qat}) == "int8"  # --qat-epochs 0: the one INT8 file


def test_command_1s_three_images_are_no_clear_loss_ten_are():
    """README command 1: QAT INT8 97.77%, PTQ INT8 98.61% of 359: PTQ alone right on 3,
    p = 0.125: PTQ ships, without a WARNING; 10 of 10 discordant images is clear."""
    truth = [0] * 359
    by_kind = {"float32_keras": _scored("float32_keras", [1] * 5 + [0] * 354, truth),
               "ptq_int8": _scored("ptq_int8", [1] * 5 + [0] * 354, truth),
               "int8": _scored("int8", [1] * 8 + [0] * 351, truth)}
    texts, records = gates.loss_warnings(by_kind, truth, 359)
    assert texts == []
    # float vs QAT, float vs PTQ (the same answers), PTQ vs QAT
    assert [r["p_a_better"] for r in records] == [pytest.approx(0.125), 1.0,
                                                  pytest.approx(0.125)]
    by_kind["int8"] = _scored("int8", [1] * 15 + [0] * 344, truth)
    texts, _ = gates.loss_warnings(by_kind, truth, 359)
    assert texts == [
        f"QAT INT8 TFLite lost to {other}: 95.82% vs 98.61% of 359 held-out images "
        f"({other} alone right on 10, QAT INT8 TFLite alone on 0; {gates.PAIRED_TEST}: "
        f"p = 0.00098, below 0.05)" for other in ("float32 Keras", "PTQ INT8 TFLite")]


# ----------------------------------------------------------------------------- base names


@pytest.mark.parametrize("given, shipped", [
    ("/home/u/photos/flowers/train", "flowers"), ("/home/u/flowers/Training/", "flowers"),
    ("/data/x/val", "x"), ("/data/flowers", "flowers"), ("digits", "digits"),
    ("tfds:cifar10", "tfds:cifar10"), ("/train", "train"),
])
def test_shipped_names_are_base_names_above_a_split_folder(given, shipped):
    assert shipped_name(given) == shipped


def test_the_shipped_command_holds_no_local_path(tmp_path):
    run = tmp_path / "runs" / "r1"
    argv = ["--checkpoint", f"{run}/model.keras", f"--dataset={tmp_path}/my flowers/train",
            "--out", str(tmp_path / "assets"), "--qat-epochs", "2"]
    command = shipped_command(argv)
    assert command == ("python -m export.tflite --checkpoint r1/model.keras "
                       "'--dataset=my flowers' --out assets --qat-epochs 2")
    assert str(tmp_path) not in command
    assert parse(argv).qat_epochs == 2


# ----------------------------------------------------------------------------- the card

HOSTILE = ["<img src=x onerror=alert(1)>", "[link](javascript:alert(1))",
           "`tick` **bold**", "| pipes |", "plain"]


def _results(labels, dataset="data`<b>x</b>"):
    row = {"model": "QAT INT8 TFLite", "file": "m_int8.tflite", "ship": True,
           "quantization": {"weights": "int8", "activations": "int8",
                            "description": "full INT8", "integer_only": True},
           "size_bytes": 10, "params": 100, "macs": 1000, "latency_ms": 1.0,
           "accuracy": 0.5, "per_class_accuracy": {n: 0.5 for n in labels}}
    return {"model": "resnet20", "model_kwargs": {}, "res": 16, "io": "uint8",
            "results_file": "m_results.json", "command": "python -m export.tflite "
            f"--dataset '{dataset}'", "paper": "p", "dataset": dataset, "labels": labels,
            "seed": 0, "num_train": 10, "held_out_images": 10, "checkpoint": None,
            "float_epochs": 1, "float_kept": {"epoch": 1, "of": 2, "phase": None,
                                              "phase_epoch": None, "val_accuracy": 0.5},
            "recipe": "r", "float_lr": 0.1, "batch_size_per_replica": 8, "augment": "none",
            "quantization": "q", "qat": False, "calibration_images": 8, "threads": 1,
            "shipped_file": "m_int8.tflite", "shipped_model": "QAT INT8 TFLite",
            "agreement_int8_vs_float32_keras": 1.0, "agreement_reference": "float32 Keras",
            "min_agreement": 0.99, "class_counts": {n: 2 for n in labels},
            "class_difference_points": 5.0,
            "classes_int8_differs": [{"class": labels[0], "float32_keras": 1.0, "int8": 0.0}],
            "warnings": [f"class {labels[1]} is odd"], "rows": [row],
            "environment": {"cpu": "<cpu>"}}


def _unescaped_pipes(line):
    return sum(1 for i, c in enumerate(line) if c == "|" and (i == 0 or line[i - 1] != "\\"))


def test_hostile_class_and_data_set_names_are_text_in_the_card():
    card = model_card.model_card(_results(HOSTILE))
    assert "<img" not in card and "<cpu>" not in card
    # raw HTML only inside the command's code span, which the backtick cannot close
    assert [line for line in card.splitlines() if "<b>" in line] == [
        "Generated from `m_results.json` by ``python -m export.tflite --dataset "
        "'data`<b>x</b>'``; every figure below is that file's."]
    assert "- Data set: data\\`&lt;b&gt;x&lt;/b&gt;, 5 classes" in card
    assert "&lt;img src=x onerror=alert(1)&gt;" in card
    assert re.search(r"(?<!\\)\]\(", card) is None  # no "](" that makes a link
    assert "\\[link\\](javascript:alert(1))" in card
    assert "\\`tick\\` \\*\\*bold\\*\\*" in card
    rows = [line for line in card.splitlines() if line.startswith("| ")]
    per_class = [line for line in rows if line.split(" | ")[1:2] == ["2"]]
    assert len(per_class) == len(HOSTILE)
    assert {_unescaped_pipes(line) for line in rows} == {4, 8}  # no cell split
    assert "| \\| pipes \\| | 2 | 50.00% |" in card
    assert "**The file to ship: `m_int8.tflite`**" in card
    assert "- Float model kept: epoch 1 of 2 (the best held-out accuracy, 50.00% during" in card


# ----------------------------------------------------------------------------- one set of files


def _entry(name, content):
    return {"file": name, "sha256": hashlib.sha256(content).hexdigest()}


def test_publishing_a_stem_removes_its_earlier_files_and_entries(tmp_path):
    old = {"m_int8.tflite": b"old", "m_ptq_int8.tflite": b"old ptq", "m_float16.tflite": b"f16",
           "other_int8.tflite": b"other", "labels.txt": b"a\n"}
    manifest.publish(tmp_path, old, [_entry(n, c) for n, c in old.items() if n.endswith("tflite")])
    (tmp_path / "m_qat_int8.tflite").write_bytes(b"unlisted")  # on disk, no entry
    new = {"m_int8.tflite": b"new", "labels.txt": b"a\n"}
    stale = ["m_ptq_int8.tflite", "m_float16.tflite", "m_qat_int8.tflite", "m_results.json"]
    manifest.publish(tmp_path, new, [_entry("m_int8.tflite", b"new")], stale=stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "labels.txt", "m_int8.tflite", "models.json", "other_int8.tflite"]
    listed = json.loads((tmp_path / "models.json").read_text())["models"]
    assert [(e["file"], e["sha256"]) for e in listed] == [
        ("m_int8.tflite", hashlib.sha256(b"new").hexdigest()),
        ("other_int8.tflite", hashlib.sha256(b"other").hexdigest())]


def test_a_stale_name_is_never_a_path_or_a_file_being_written(tmp_path):
    (tmp_path / "keep.txt").write_bytes(b"x")
    manifest.publish(tmp_path / "out", {"m_int8.tflite": b"new"},
                     [_entry("m_int8.tflite", b"new")],
                     stale=["../keep.txt", "m_int8.tflite"])
    assert (tmp_path / "keep.txt").exists() and (tmp_path / "out" / "m_int8.tflite").exists()


def test_an_export_owns_every_name_of_its_stem_and_io():
    from export.job.config import ExportConfig
    from export.job.plan import ExportPlan
    from tfresnet.models.variant import ModelVariant

    def plan(io):
        return ExportPlan(config=ExportConfig(io=io), variant=ModelVariant("resnet20", None, 16),
                          split=None, labels=(), source=None, out="o")

    uint8 = plan("uint8")
    assert (uint8.file("int8"), uint8.file("ptq_int8")) == (
        "resnet20_16_int8.tflite", "resnet20_16_ptq_int8.tflite")
    assert (uint8.file("int8", ships="ptq_int8"), uint8.file("ptq_int8", ships="ptq_int8")) \
        == ("resnet20_16_qat_int8.tflite", "resnet20_16_int8.tflite")
    assert {"resnet20_16_qat_int8.tflite", "resnet20_16_float16.tflite",
            "resnet20_16_mixed_int8.tflite", "resnet20_16_quant_debug.csv",
            "resnet20_16_MODEL_CARD.md"} <= uint8.own_files()
    assert "labels.txt" not in uint8.own_files() and "models.json" not in uint8.own_files()
    int8 = plan("int8").own_files()
    assert "resnet20_16_qat_int8_io_int8.tflite" in int8
    assert not {"resnet20_16_int8.tflite", "resnet20_16_results.json"} & int8  # uint8's

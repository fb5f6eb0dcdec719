"""``python -m export.tflite`` end to end on tiny configurations, and its bad inputs.

The CLI runs in this process (``cli.run(main, argv)``: same exit codes and one-line
errors as the command, without paying TensorFlow's start-up again); the real command's
refusals are tests/cli/test_bad_input.py's.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from export import convert, metadata, tflite
from export.job import manifest
from helpers import mediapipe_env, report_checks
from helpers.cli_refusal import refused
from tfresnet import data, train
from tfresnet.utils import cli

PROG = tflite.PROG
TINY = ["--model", "mobilenet_v1", "--alpha", "0.25", "--res", "64"]
TINY_STEM = "mobilenet_v1_0.25_64"
# Batches of 8: 540 steps in 3 epochs of the 1,438 digits, enough for MobileNet's
# BatchNorm moving statistics (momentum 0.99) to settle; at 64x64 the last feature maps
# are 2x2 (at 32x32, 1x1 maps of a small batch make eval-mode BN useless). One replica:
# two on this process's two logical CPUs only add their synchronisation to every step
# (the exports from resnet_run below train under the default two).
FAST = ["--epochs", "3", "--qat-epochs", "1", "--batch-size", "8", "--strategy", "default",
        "--calibration", "64"]
CHANCE = 0.1


def run_cli(argv):
    """Runs the CLI as ``python -m export.tflite`` would; returns (exit code, results)."""
    try:
        return 0, cli.run(tflite.main, argv, prog=PROG)
    except SystemExit as stop:
        return stop.code, None


def snapshot(folder):
    """{name: (size, mtime_ns, bytes)} of a folder's files (None if it does not exist)."""
    if not os.path.isdir(folder):
        return None
    result = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            result[name] = (os.path.getsize(path), os.stat(path).st_mtime_ns, f.read())
    return result


def temp_files(folder):
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny default-path export: trains MobileNet v1 0.25 @ 64 on digits, QAT, INT8."""
    out = tmp_path_factory.mktemp("assets")
    code, results = run_cli(TINY + FAST + ["--out", str(out)])
    assert code == 0
    return out, results


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    """A tfresnet.train run directory: CIFAR ResNet-20 (option A) on digits at 16x16 (a
    quarter of the 32x32 work in each of the exports from it; the last maps are 4x4)."""
    run_dir = tmp_path_factory.mktemp("runs") / "resnet20"
    train.fit("resnet20", dataset="digits", epochs=2, batch_size=8, lr=0.1, augment="none",
              image_size=16, out_dir=str(run_dir), verbose=0)
    return str(run_dir)


# ----------------------------------------------------------------------------- default path


def _qat_ships(results) -> bool:
    """Whether the QAT file shipped as STEM_int8 (else the PTQ one did, right on more
    held-out images: this run's noise decides; each case is checked below)."""
    assert results["shipped_model"] in ("QAT INT8 TFLite", "PTQ INT8 TFLite")
    return results["shipped_model"] == "QAT INT8 TFLite"


def _agreement(results) -> float:
    """The shipped INT8 file's agreement with its Keras model (QAT Keras for the QAT
    file, float32 Keras for the PTQ one)."""
    reference = "qat_keras" if results["shipped_model"] == "QAT INT8 TFLite" else "float32_keras"
    return results[f"agreement_int8_vs_{reference}"]


def _other_int8(results) -> str:
    """The INT8 file that did not ship: STEM_ptq_int8, or STEM_qat_int8 when PTQ ships."""
    return f"{TINY_STEM}_{'ptq_int8' if _qat_ships(results) else 'qat_int8'}.tflite"


def test_export_writes_every_file(exported):
    out, results = exported
    expected = {f"{TINY_STEM}_int8.tflite", _other_int8(results),
                f"{TINY_STEM}_float32.tflite", "labels.txt", "models.json",
                f"{TINY_STEM}_results.json", f"{TINY_STEM}_confusion.png",
                f"{TINY_STEM}_MODEL_CARD.md"}
    assert set(os.listdir(out)) == expected
    assert set(results["files"]) == expected
    assert (out / "labels.txt").read_text().split() == [str(d) for d in range(10)]


def test_int8_file_is_full_integer_with_raw_pixel_input(exported):
    out, _ = exported
    model_bytes = (out / f"{TINY_STEM}_int8.tflite").read_bytes()
    assert convert.non_integer_ops(model_bytes) == []
    io = convert.io_tensors(model_bytes)
    assert (io["input"].dtype, io["input"].shape) == ("uint8", (1, 64, 64, 3))
    assert (io["input"].scale, io["input"].zero_point) == (1 / 128, 128)
    assert io["output"].dtype == "uint8"
    ops = {op.name for op in convert.graph_ops(model_bytes)}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= ops


def test_metadata_carries_labels_and_normalization(exported):
    out, results = exported
    other = _other_int8(results)[len(TINY_STEM) + 1:-len(".tflite")]
    for kind in ("int8", other, "float32"):
        meta = metadata.read_metadata((out / f"{TINY_STEM}_{kind}.tflite").read_bytes())
        assert meta["name"] == f"{TINY_STEM}_{kind}"
        assert meta["labels"] == [str(d) for d in range(10)]
        assert meta["input"]["mean"] == [128.0] and meta["input"]["std"] == [128.0]
        assert meta["input"]["image_size"] == (64, 64)
        assert meta["author"] == "tfresnet"


def test_one_tensor_name_in_the_signature_the_tensors_and_the_metadata(exported):
    """An app developer reads ``image`` and ``probabilities`` everywhere: in the
    signature, in the plain interpreter's details and in the metadata; the signature
    runner still answers as the plain interpreter does."""
    from ai_edge_litert.interpreter import Interpreter

    from export import names

    out, results = exported
    for file in (f"{TINY_STEM}_int8.tflite", _other_int8(results), f"{TINY_STEM}_float32.tflite"):
        model_bytes = (out / file).read_bytes()
        interpreter = Interpreter(model_content=model_bytes)
        interpreter.allocate_tensors()
        assert interpreter.get_signature_list() == {names.SIGNATURE: {
            "inputs": [names.INPUT_NAME], "outputs": [names.OUTPUT_NAME]}}
        (given,), (taken,) = interpreter.get_input_details(), interpreter.get_output_details()
        assert (given["name"], taken["name"]) == ("image", "probabilities"), file
        meta = metadata.read_metadata(model_bytes)
        assert (meta["input"]["name"], meta["output"]["name"]) == ("image", "probabilities")
        images = np.zeros(given["shape"], given["dtype"])
        interpreter.set_tensor(given["index"], images)
        interpreter.invoke()
        plain = interpreter.get_tensor(taken["index"])
        runner = interpreter.get_signature_runner(names.SIGNATURE)
        np.testing.assert_array_equal(runner(image=images)["probabilities"], plain)


def test_accuracies_are_learned_and_int8_agrees_with_qat(exported):
    out, results = exported
    rows = {r["model"]: r for r in results["rows"]}
    assert set(rows) == {"float32 Keras", "QAT Keras", "float32 TFLite", "PTQ INT8 TFLite",
                         "QAT INT8 TFLite"}
    for row in rows.values():
        assert row["accuracy"] > 2 * CHANCE, row
    # float32 TFLite computes what the float Keras model computes.
    assert abs(rows["float32 TFLite"]["accuracy"] - rows["float32 Keras"]["accuracy"]) < 0.01
    key = f"agreement_int8_vs_{'qat_keras' if _qat_ships(results) else 'float32_keras'}"
    assert results[key] >= 0.99
    assert results["held_out_images"] == 359  # 20% of each digit class
    # The figures are real: recompute them from the files with the runner.
    images, labels = data.as_numpy(data.load("digits", image_size=64).val)
    correct = {}
    for name in (f"{TINY_STEM}_int8.tflite", _other_int8(results)):
        probs = convert.Runner(out / name).predict(images)
        correct[name] = int(np.sum(probs.argmax(-1) == labels))
    shipped = rows[results["shipped_model"]]
    assert correct[shipped["file"]] / 359 == pytest.approx(shipped["accuracy"])
    # the file to ship is the one right on more images (QAT on a tie)
    assert correct[f"{TINY_STEM}_int8.tflite"] >= correct[_other_int8(results)] + (
        0 if _qat_ships(results) else 1)
    saved = json.loads((out / f"{TINY_STEM}_results.json").read_text())
    assert saved[key] == results[key]
    assert saved["float_kept"]["of"] == 3 and 1 <= saved["float_kept"]["epoch"] <= 3


def test_manifest_describes_each_file(exported):
    out, results = exported
    manifest = json.loads((out / "models.json").read_text())
    entries = {e["file"]: e for e in manifest["models"]}
    assert set(entries) == {f"{TINY_STEM}_int8.tflite", f"{TINY_STEM}_float32.tflite",
                            _other_int8(results)}
    assert [n for n, e in entries.items() if e["ship"]] == [f"{TINY_STEM}_int8.tflite"]
    int8 = entries[f"{TINY_STEM}_int8.tflite"]
    assert int8["variant"] == ("qat_int8" if _qat_ships(results) else "ptq_int8")
    assert int8["model"] == "mobilenet_v1"
    assert int8["alpha"] == 0.25 and int8["input_size"] == [64, 64]
    assert int8["input"] == {"shape": [1, 64, 64, 3], "dtype": "uint8",
                             "scale": 1 / 128, "zero_point": 128}
    assert int8["output"]["dtype"] == "uint8" and int8["output"]["shape"] == [1, 10]
    assert int8["normalization"]["mean"] == 128.0 and int8["normalization"]["std"] == 128.0
    assert int8["size_bytes"] == os.path.getsize(out / int8["file"])
    assert int8["params"] == 221_114  # MobileNet v1 0.25: 470,072 + 5,472 - 1000-class head
    assert int8["macs"] > 0 and int8["latency_ms"] > 0
    rows = {r["file"]: r for r in results["rows"] if r["file"]}
    for name, entry in entries.items():
        assert entry["accuracy"] == rows[name]["accuracy"]
    assert entries[f"{TINY_STEM}_float32.tflite"]["input"]["dtype"] == "float32"


def test_per_class_figures_and_model_card(exported):
    """Per-class accuracy sums back to each model's accuracy; the confusion PNG and the
    model card (whose figures are the results JSON's) are written beside the files."""
    out, _ = exported
    report_checks.per_class_sums_back(out / f"{TINY_STEM}_results.json")
    report_checks.confusion_png_written(out, TINY_STEM)
    report_checks.model_card_matches(out, TINY_STEM)


def test_mediapipe_reads_the_exported_files(exported, tmp_path):
    """The real client: MediaPipe Tasks' ImageClassifier loads the exported INT8 and
    float32 files, classifies digit images with our runner's top-1 and names the classes
    from the embedded labels."""
    python = mediapipe_env.python_or_skip()
    out, _ = exported
    images, _ = data.as_numpy(data.load("digits", image_size=64).val, limit=8)
    mediapipe_env.assert_same_top1(
        python, [out / f"{TINY_STEM}_{kind}.tflite" for kind in ("int8", "float32")], images,
        tmp_path)


# ----------------------------------------------------------------------------- checkpoints, --io


def test_checkpoint_io_float32_merges_into_manifest(exported, resnet_run, tmp_path):
    out = tmp_path / "assets"
    shutil.copytree(exported[0], out)
    code, results = run_cli(["--checkpoint", resnet_run, "--io", "float32", "--qat-epochs",
                             "1", "--calibration", "64", "--out", str(out)])
    assert code == 0
    assert results["model"] == "resnet20" and results["float_epochs"] is None
    int8_file = "resnet20_16_int8_io_float32.tflite"
    model_bytes = (out / int8_file).read_bytes()
    assert convert.non_integer_ops(model_bytes) == []  # QUANTIZE/DEQUANTIZE only at the ends
    io = convert.io_tensors(model_bytes)
    assert io["input"].dtype == io["output"].dtype == "float32"
    names = [op.name for op in convert.graph_ops(model_bytes)]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    assert "PAD" in names  # the option A shortcuts
    manifest = json.loads((out / "models.json").read_text())
    files = {e["file"] for e in manifest["models"]}
    assert {f"{TINY_STEM}_int8.tflite", int8_file} <= files  # the earlier model is kept
    assert _agreement(results) >= 0.99
    assert {r["model"]: r for r in results["rows"]}["QAT INT8 TFLite"]["accuracy"] > 2 * CHANCE


def _text_files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".json", ".md", ".txt")}


def test_the_better_int8_file_ships_as_int8_and_replaces_every_earlier_file(
        resnet_run, tmp_path, monkeypatch, capsys):
    """PTQ made to win (QAT's loss is the run's noise here): the PTQ file ships as
    STEM_int8.tflite, the QAT file is STEM_qat_int8.tflite, and the earlier export's
    STEM_ptq_int8.tflite, float16 and debug files of the stem are gone, with their
    entries; another stem's file stays."""
    from export.job import pipeline

    out = tmp_path / "assets"
    earlier = {"resnet20_16_ptq_int8.tflite": b"an earlier training", "other_int8.tflite": b"o",
               "resnet20_16_float16.tflite": b"f16", "resnet20_16_quant_debug.csv": b"x"}
    manifest.publish(out, earlier, [{"file": n, "sha256": hashlib.sha256(c).hexdigest()}
                                    for n, c in earlier.items() if n.endswith(".tflite")])
    monkeypatch.setattr(pipeline, "choose_int8", lambda by_kind: "ptq_int8")
    code, results = run_cli(["--checkpoint", resnet_run, "--qat-epochs", "1",
                             "--calibration", "32", "--out", str(out)])
    assert code == 0
    stem = "resnet20_16"
    assert set(os.listdir(out)) == {
        f"{stem}_int8.tflite", f"{stem}_qat_int8.tflite", f"{stem}_float32.tflite",
        "other_int8.tflite", "labels.txt", "models.json", f"{stem}_results.json",
        f"{stem}_confusion.png", f"{stem}_MODEL_CARD.md"}
    assert "Removed resnet20_16_float16.tflite, resnet20_16_ptq_int8.tflite, " \
        "resnet20_16_quant_debug.csv: an earlier export's files" in capsys.readouterr().out
    listed = {e["file"]: e for e in json.loads((out / "models.json").read_text())["models"]}
    assert set(listed) == {n for n in os.listdir(out) if n.endswith(".tflite")}
    for name, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert {n: (e.get("ship"), e.get("variant")) for n, e in listed.items()} == {
        f"{stem}_int8.tflite": (True, "ptq_int8"), f"{stem}_qat_int8.tflite": (False, "qat_int8"),
        f"{stem}_float32.tflite": (False, "float32"), "other_int8.tflite": (None, None)}
    rows = {r["model"]: r for r in results["rows"]}
    assert rows["PTQ INT8 TFLite"]["file"] == f"{stem}_int8.tflite" and rows["PTQ INT8 TFLite"]["ship"]
    assert rows["QAT INT8 TFLite"]["file"] == f"{stem}_qat_int8.tflite"
    assert results["shipped_file"] == f"{stem}_int8.tflite"
    assert results["agreement_reference"] == "float32 Keras"  # the PTQ file's own model
    assert "agreement_int8_vs_float32_keras" in results
    assert f"* the file to ship: {stem}_int8.tflite (PTQ INT8 TFLite)" in results["table"]
    assert "PTQ INT8 TFLite  resnet20_16_int8.tflite *" in results["table"]
    description = metadata.read_metadata((out / f"{stem}_int8.tflite").read_bytes())
    assert "post-training quantized, full INT8; the file to ship" in description["description"]
    assert description["name"] == f"{stem}_int8"
    # the kept epoch, and no local path in any file written
    assert results["float_kept"]["of"] == 2 and results["float_kept"]["epoch"] in (1, 2)
    assert f"float32 Keras: epoch {results['float_kept']['epoch']} of 2 kept" in results["table"]
    assert results["checkpoint"] == "resnet20"
    assert results["command"] == ("python -m export.tflite --checkpoint resnet20 "
                                  "--qat-epochs 1 --calibration 32 --out assets")
    for name, content in {**_text_files(out), f"{stem}_int8.tflite":
                          (out / f"{stem}_int8.tflite").read_bytes()}.items():
        for local in (str(tmp_path), resnet_run, os.path.dirname(resnet_run)):
            assert local.encode() not in content, name
    card = (out / f"{stem}_MODEL_CARD.md").read_text()
    assert f"**The file to ship: `{stem}_int8.tflite`** (PTQ INT8 TFLite" in card


def test_hostile_class_names_are_escaped_in_the_card(tmp_path):
    """Class folders named to inject HTML, links, emphasis and table cells, in a folder
    ``hostile/train``: the card shows each name as text, every per-class row keeps its
    columns, labels.txt keeps the names as they are, the data is named ``hostile``."""
    from PIL import Image

    names = ["<img src=x onerror=alert(1)>", "[link](javascript:alert(1))",
             "`tick` **bold**", "a | b"]
    root = tmp_path / "hostile" / "train"
    rng = np.random.RandomState(0)
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(10):
            image = np.clip(rng.normal(60 * c, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / name / f"{i}.png")
    out = tmp_path / "assets"
    code, results = run_cli(["--model", "resnet20", "--res", "16", "--dataset", str(root),
                             "--epochs", "1", "--qat-epochs", "0", "--batch-size", "8",
                             "--calibration", "8", "--strategy", "default", "--allow-chance",
                             "--min-agreement", "0", "--out", str(out)])
    assert code == 0
    assert (out / "labels.txt").read_text().splitlines() == sorted(names)
    assert results["dataset"] == "hostile" and str(tmp_path) not in results["command"]
    card = (out / "resnet20_16_MODEL_CARD.md").read_text()
    assert "<img" not in card and "- Data set: hostile, 4 classes" in card
    report_checks.model_card_matches(out, "resnet20_16")  # every row's columns in place
    assert "| a \\| b | 2 |" in card and "| \\`tick\\` \\*\\*bold\\*\\* | 2 |" in card
    assert "| \\[link\\](javascript:alert(1)) | 2 |" in card


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_checkpoint_io_int8(resnet_run, tmp_path):
    code, results = run_cli(["--checkpoint", resnet_run, "--io", "int8", "--qat-epochs",
                             "1", "--calibration", "64", "--out", str(tmp_path)])
    assert code == 0
    model_bytes = (tmp_path / "resnet20_16_int8_io_int8.tflite").read_bytes()
    io = convert.io_tensors(model_bytes)
    assert (io["input"].dtype, io["input"].scale, io["input"].zero_point) == \
        ("int8", 1 / 128, 0)
    assert io["output"].dtype == "int8"
    assert convert.non_integer_ops(model_bytes) == []
    assert _agreement(results) >= 0.99


def test_interrupted_export_changes_nothing(exported, resnet_run, tmp_path, monkeypatch):
    """Killed while writing (at the fourth temporary file: the retracted models.json and
    two .tflite are written): every earlier file is intact, no new or temporary file is
    left. Post-training INT8 only: the publishing step is the same with or without QAT."""
    out = tmp_path / "assets"
    shutil.copytree(exported[0], out)
    before = snapshot(out)
    real_write_temp = manifest._write_temp
    entered = []

    def interrupted_write_temp(path, content):
        entered.append(path)
        if len(entered) == 4:
            raise KeyboardInterrupt
        return real_write_temp(path, content)

    monkeypatch.setattr(manifest, "_write_temp", interrupted_write_temp)
    code, _ = run_cli(["--checkpoint", resnet_run, "--qat-epochs", "0", "--calibration", "16",
                       "--min-agreement", "0", "--out", str(out)])
    assert code == 130
    assert len(entered) == 4
    assert temp_files(out) == []
    assert snapshot(out) == before


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "0"], "--alpha must be a number > 0"),  # before TensorFlow
    (["--alpha", "-0.5"], "--alpha must be a number > 0"),
    (["--alpha", "0.01"], "--alpha must be a number >= 1/32"),  # MobileNet's own rule
    (["--res", "100"], "--res must be a multiple of 32 and at least 32"),
    (["--res", "0"], "--res must be an integer >= 1"),  # before TensorFlow
    (["--model", "mobilenet_v2"], "did you mean 'mobilenet_v1'"),
    (["--model", "alexnet"], "LRN has no integer TFLite kernel"),
    (["--alpha", "0.5", "--model", "resnet20"], "--alpha applies to mobilenet_v1 only"),
    (["--checkpoint", "no/such/run"], "no such run directory or .keras file"),
    (["--epochs", "0"], "--epochs 0 exports the ImageNet classifier untrained: give "
                        "--weights imagenet --qat-epochs 0 --calibration-images FOLDER"),
    (["--epochs", "-1"], "argument --epochs: expected an integer >= 0"),
    (["--io", "int4"], "invalid choice"),
    (["--seed", "-1"], "argument --seed: expected an integer from 0 to 2**32 - 1"),
    (["--epochs", "1e12"], "argument --epochs: expected an integer"),
    (["--res", "100000"], "cannot fit in this machine's memory"),  # before allocating
    (TINY + ["--float-layers", "conv9"], "--float-layers: 'conv9' is not a quantized conv / "
                                         "dense layer of mobilenet_v1_0.25_64"),  # untrained
    (["--epochs", "0", "--weights", "imagenet", "--qat-epochs", "0", "--calibration-images",
      "photos", "--allow-chance"], "--allow-chance skips the check that the float model is "
                                   "above chance, which --epochs 0 does not make"),
])
def test_bad_input_one_line_exit_2_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "new_folder"
    code, _ = run_cli(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"{PROG}: error:") and message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_bad_checkpoints_leave_the_folder_unchanged(exported, resnet_run, tmp_path, capsys):
    out = tmp_path / "assets"
    shutil.copytree(exported[0], out)
    before = snapshot(out)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 not a model")
    wrong = [
        (["--checkpoint", str(corrupt)], "not a readable .keras model"),
        (["--checkpoint", resnet_run, "--model", "resnet32"], "is not a resnet32_16"),
        (["--checkpoint", resnet_run, "--res", "64"], "takes (16, 16, 3) images"),
        (["--checkpoint", resnet_run, "--model", "mobilenet_v1", "--alpha", "0.25",
          "--res", "32"], "is not a mobilenet_v1_0.25_32"),
        (["--checkpoint", resnet_run, "--dataset", "tfds:no_such_set"], "no_such_set"),
    ]
    for argv, message in wrong:
        code, _ = run_cli(argv + ["--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, argv
        assert err.count("\n") == 1 and message in err, err
    assert snapshot(out) == before


def test_unwritable_out_is_refused(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "assets"):
        code, _ = run_cli(TINY + ["--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
    assert a_file.read_text() == "not a folder"


def test_corrupt_manifest_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "models.json").write_text("{not json")
    before = snapshot(tmp_path)
    code, _ = run_cli(TINY + ["--out", str(tmp_path)])
    assert code == 2 and "models.json" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_command_line_error_is_the_whole_line(tmp_path, capsys):
    """Bad --res: the full line, nothing created (in this process; tests/cli/test_bad_input.py
    runs the real command and reads its unfiltered stderr)."""
    err = refused(tflite.main, ["--res", "150"], prog=PROG, capsys=capsys,
                  out=tmp_path / "assets")
    assert err == (f"{PROG}: error: --res must be a multiple of 32 and at least 32 for "
                   f"mobilenet_v1 (the paper uses 224, 192, 160, 128). Received: --res=150")

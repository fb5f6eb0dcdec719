"""No useless model reaches a phone: ``export.tflite`` refuses a float model whose
held-out accuracy is not above chance (exit status 1, ``--out`` untouched) unless
``--allow-chance``, which ships it with the warning in the results JSON and models.json;
training warnings travel with it; the calibration count is the images actually used."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from export import tflite
from export.job import pipeline
from export.job.config import ExportConfig
from tfresnet.utils import cli, fileio, stats

PER_CLASS, CLASSES = 19, 5  # 15 training + 4 held-out images a class


@pytest.mark.parametrize("correct, total, share, passes", [
    (23, 100, 0.2, False),   # p = 0.26: what a chance model does one time in four
    (30, 100, 0.2, False),   # p = 0.011: just short of the 1% required
    (31, 100, 0.2, True),    # p = 0.0063
    (359, 359, 0.1, True),
    (5, 20, 0.2, False),
    (0, 0, 0.2, False),      # nothing held out proves nothing
])
def test_above_chance_is_the_one_sided_binomial_test(correct, total, share, passes):
    from scipy.stats import binomtest

    ok, p = stats.above_chance(correct, total, share)
    assert ok is passes
    if total:  # scipy's own test of the same hypothesis gives the same p-value
        assert p == pytest.approx(binomtest(correct, total, share,
                                            alternative="greater").pvalue, rel=1e-9)


def _noise_folder(root):
    """Random images in 5 class folders: no model can learn them."""
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        os.makedirs(root / f"c{c}")
        for i in range(PER_CLASS):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / f"c{c}" / f"{i}.png")
    return str(root)


def _argv(folder, out, *extra):
    return ["--model", "resnet20", "--res", "32", "--dataset", folder, "--epochs", "1",
            "--qat-epochs", "0", "--batch-size", "8", "--strategy", "default",
            "--out", str(out), *extra]


def test_a_model_at_chance_is_refused_then_shipped_with_allow_chance(tmp_path, capsys):
    folder = _noise_folder(tmp_path / "noise")
    out = tmp_path / "assets"
    with pytest.raises(SystemExit) as stop:
        cli.run(tflite.main, _argv(folder, out), prog=tflite.PROG)
    captured = capsys.readouterr()
    assert stop.value.code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tflite.PROG}: error: the float "
                                                   "model's held-out accuracy"), lines
    assert "is not above chance: the largest class holds 20.00% of the held-out" in lines[0]
    assert "nothing was written" in lines[0] and "--allow-chance" in lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()
    # 75 training images, fewer than --calibration's 200: the count used is said.
    assert "calibration: 75 training images, all there are; calibration=200" in captured.out

    results = cli.run(tflite.main, _argv(folder, out, "--allow-chance"), prog=tflite.PROG)
    saved = json.loads((out / "resnet20_32_results.json").read_text())
    assert saved["calibration_images"] == 75
    chance = [w for w in saved["warnings"] if w.startswith("at chance: ")]
    assert len(chance) == 1 and chance[0].endswith("shipped anyway (`allow_chance=True`)")
    entries = json.loads((out / "models.json").read_text())["models"]
    assert entries and all(chance[0] in e["warnings"] for e in entries)
    assert f"WARNING {chance[0]}" in results["table"]
    # the printed table says the warnings in the command's flags
    assert "shipped anyway (--allow-chance)" in capsys.readouterr().out


def test_training_warnings_travel_from_a_checkpoint(tmp_path):
    """A run's config.json warnings reach the plan, hence the table, results and models.json."""
    from tfresnet import train

    folder = _noise_folder(tmp_path / "noise")
    run = str(tmp_path / "run")
    train.fit("resnet20", dataset=folder, image_size=32, epochs=1, batch_size=8,
              strategy="default", verbose=0, out_dir=run)
    config = json.load(open(os.path.join(run, "config.json")))
    warnings = config["result"]["warnings"]
    config["result"]["warnings"] = warnings + ["diverged: planted"]
    fileio.write_text(os.path.join(run, "config.json"), json.dumps(config))
    plan = pipeline.plan_export(ExportConfig(out=str(tmp_path / "o")), run)
    assert plan.training_warnings == warnings + ["diverged: planted"]

"""``python -m export.tflite --qat-epochs 0``: post-training full-INT8 only, said so in
the table, the results JSON and models.json; and the ImageNet classifier itself
(``--weights imagenet --epochs 0 --qat-epochs 0 --calibration-images FOLDER``) with the
1,000 ImageNet labels and the INT8 file's agreement with the float model."""

import json
import re

import keras
import numpy as np
import pytest
from PIL import Image

from export import convert, tflite
from export.job import plan
from helpers.cli_refusal import refused
from helpers.legacy_files import save_h5_weights
from tfresnet import data
from tfresnet.models import weights as weights_lib
from tfresnet.training import transfer
from tfresnet.utils import cli


def _run(argv, capsys):
    results = cli.run(tflite.main, argv, prog=tflite.PROG)
    return results, capsys.readouterr().out


def test_qat_epochs_0_writes_the_ptq_file_once_and_says_no_qat(tmp_path, capsys):
    out = tmp_path / "assets"
    results, printed = _run(["--model", "resnet20", "--res", "16", "--epochs", "1",
                             "--qat-epochs", "0", "--batch-size", "16", "--calibration", "32",
                             "--min-agreement", "0.5", "--strategy", "default",
                             "--out", str(out)], capsys)
    int8 = out / "resnet20_16_int8.tflite"
    assert not convert.non_integer_ops(int8.read_bytes())  # every op integer
    assert sorted(p.name for p in out.glob("*.tflite")) == [
        "resnet20_16_float32.tflite", "resnet20_16_int8.tflite"]  # no _ptq_int8 copy
    assert "QAT" not in printed.replace("(no QAT)", "").replace("No quantization-aware", "")
    assert "no quantization-aware training" in printed
    assert "top-1 agreement, PTQ INT8 TFLite (no QAT) vs float32 Keras" in printed
    saved = json.loads((out / "resnet20_16_results.json").read_text())
    assert saved["qat"] is False and saved["qat_epochs"] == 0 and saved["qat_lr"] is None
    assert "no QAT was done" in saved["quantization"]
    rows = {r["model"]: r for r in saved["rows"]}
    assert set(rows) == {"float32 Keras", "float32 TFLite", "PTQ INT8 TFLite (no QAT)"}
    digits_chance = 0.1
    assert rows["PTQ INT8 TFLite (no QAT)"]["accuracy"] > 2 * digits_chance
    assert 0.5 <= saved["agreement_int8_vs_float32_keras"] <= 1
    assert saved["agreement_reference"] == "float32 Keras"
    entry = next(e for e in json.loads((out / "models.json").read_text())["models"]
                 if e["file"] == int8.name)
    assert entry["variant"] == "ptq_int8" and entry["qat"] is False
    assert entry["accuracy"] == rows["PTQ INT8 TFLite (no QAT)"]["accuracy"]


def test_imagenet_labels_come_from_tfds_in_keras_order():
    labels = plan.imagenet_labels()
    assert len(labels) == len(set(labels)) == 1000
    assert labels[0].startswith("tench") and labels[999].startswith("toilet tissue")


# (class index, synset, name) of keras.applications' imagenet_class_index.json, spread
# over the range: the names must sit at the indices of their synsets, not just at the ends.
KNOWN_CLASSES = [(1, "n01443537", "goldfish"), (207, "n02099601", "golden retriever"),
                 (281, "n02123045", "tabby"), (409, "n02708093", "analog clock"),
                 (817, "n04285008", "sports car"), (954, "n07753592", "banana")]


def test_imagenet_labels_sit_at_their_synsets_indices():
    import importlib.resources

    wnids = (importlib.resources.files("tensorflow_datasets") / "datasets" / "imagenet2012"
             / "labels.txt").read_text().split()
    labels = plan.imagenet_labels()
    for index, wnid, name in KNOWN_CLASSES:
        assert wnids[index] == wnid
        assert labels[index].split(",")[0].strip().lower() == name, (index, labels[index])


def _fake_imagenet_cache(keras_home):
    """A keras.applications MobileNet 0.25/128 with its classifier, random weights,
    saved where weights='imagenet' looks for it (nothing is downloaded)."""
    keras.utils.set_random_seed(0)
    app = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
                                       include_top=True, weights=None)
    folder = keras_home / "models"
    folder.mkdir(parents=True)
    save_h5_weights(app, folder / weights_lib.cache_file("MobileNet", include_top=True,
                                                          alpha=0.25, rows=128))


def test_imagenet_classifier_export_has_1000_labels_and_reports_agreement(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    _fake_imagenet_cache(tmp_path / "keras_home")
    photos = tmp_path / "photos"
    (photos / "more").mkdir(parents=True)  # unlabeled: sub-folders are read too
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (96 + 8 * i, 140, 3), np.uint8)).save(
            photos / ("more" if i % 2 else "") / f"p{i}.jpg")
    out = tmp_path / "assets"
    results, printed = _run(["--model", "mobilenet_v1", "--alpha", "0.25", "--res", "128",
                             "--weights", "imagenet", "--epochs", "0", "--qat-epochs", "0",
                             "--calibration-images", str(photos), "--min-agreement", "0",
                             "--strategy", "default", "--out", str(out)], capsys)
    labels = (out / "labels.txt").read_text().splitlines()
    assert labels == plan.imagenet_labels()
    int8 = out / "mobilenet_v1_0.25_128_int8.tflite"
    assert not convert.non_integer_ops(int8.read_bytes())
    assert convert.io_tensors(int8.read_bytes())["output"].shape[-1] == 1000
    saved = json.loads((out / "mobilenet_v1_0.25_128_results.json").read_text())
    assert saved["held_out_images"] == 6 and saved["calibration_images"] == 6
    assert saved["dataset"] == "imagenet" and saved["qat"] is False
    assert all(r["accuracy"] is None for r in saved["rows"])
    # The agreement is the INT8 file's top-1 against the float model's on the 6 images.
    model, _ = transfer.load_weights("imagenet", "mobilenet_v1", classes=1000,
                                     model_kwargs={"alpha": 0.25, "res": 128})
    images = plan.load_images(str(photos), (128, 128))
    theirs = model.predict(data.normalize(images), verbose=0).argmax(-1)
    ours = convert.Runner(int8.read_bytes()).predict(images).argmax(-1)
    assert saved["agreement_int8_vs_float32_keras"] == pytest.approx(np.mean(ours == theirs))
    assert re.search(r"top-1 agreement, PTQ INT8 TFLite \(no QAT\) vs float32 Keras: "
                     r"[\d.]+% of 6 images \(unlabeled\)", printed), printed


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs 0 exports the ImageNet classifier untrained"),
    (["--weights", "imagenet", "--epochs", "0", "--qat-epochs", "0", "--calibration-images",
      "x", "--dataset", "digits"], "--dataset does not apply to --epochs 0"),
    (["--calibration-images", "x"], "--calibration-images applies to --epochs 0"),
    (["--qat-epochs", "-1"], "--qat-epochs"),
])
def test_bad_ptq_flags_one_line_exit_2(argv, message, tmp_path, capsys):
    err = refused(tflite.main, argv, prog=tflite.PROG, capsys=capsys, out=tmp_path / "assets")
    assert message in err, err

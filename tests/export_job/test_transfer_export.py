"""``python -m export.tflite --weights``: transfer learning before QAT, the frozen
backbone kept frozen through QAT, and the new labels in the INT8 file as MediaPipe reads
them."""

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from export import convert, tflite
from export.convert import qat
from helpers import mediapipe_env
from helpers.cli_refusal import refused
from tfresnet import data, train
from tfresnet.training import optim, phases, transfer
from tfresnet.utils import cli

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "training"))  # test_transfer moved to tests/training
from test_transfer import write_digits  # noqa: E402

NEW_LABELS = ["five", "six", "seven", "eight", "nine"]


def _named_folder(root):
    """The digits 5-9 in folders named after the digit (new labels)."""
    write_digits(root, range(5, 10), per_class=30, side=32)
    for digit, name in zip(range(5, 10), NEW_LABELS):
        os.rename(os.path.join(root, str(digit)), os.path.join(root, name))
    return str(root)


def test_qat_keeps_a_frozen_backbone_frozen():
    """The issue: a head-only model had 2 trainable weights, its QAT model 29. The QAT
    twin trains only the head, and so does fit's copy of it; the frozen layers' weights
    stay those of the float model while their activation ranges follow the data."""
    import keras

    from tfresnet.models import registry

    model = transfer.freeze_backbone(registry.get_model("resnet20", classes=5,
                                                        input_shape=(16, 16, 3)))
    assert len(model.trainable_weights) == 2
    qat_model = qat.quantize_model(model)
    def trained(m):
        return {layer.name for layer in m.layers if layer.trainable_weights}

    assert len(qat_model.trainable_weights) == 2
    assert trained(qat_model) == {"quant_predictions"}
    copy = optim.prepare_model(qat_model, weight_decay=1e-4)  # what train.fit trains
    assert len(copy.trainable_weights) == 2 and trained(copy) == {"quant_predictions"}
    frozen = model.get_layer("conv1_conv").get_weights()[0]
    rng = np.random.default_rng(0)
    images = data.normalize(rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8))
    copy.compile(optimizer=keras.optimizers.SGD(0.1),
                 loss="sparse_categorical_crossentropy")
    copy.fit(images, rng.integers(0, 5, 16), batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(copy.get_layer("quant_conv1_conv").get_weights()[0],
                                  frozen)
    assert qat.untrained_ranges(copy) == []  # every range, the frozen layers' too, saw data
    relu = qat.ranges(copy)["conv1_relu_quantizer"]
    assert relu[0] == 0.0 and 0.0 < relu[1] != 6.0, relu  # the data's, not [-6, 6]


def test_qat_twin_under_a_strategy_and_qat_unfreeze():
    """The export job's QAT twin: built in the strategy's scope (mirrored variables), the
    float model's frozen layers named; ``--qat-unfreeze`` trains every layer."""
    import tensorflow as tf

    from export.job import train_steps
    from tfresnet.models import registry

    model = transfer.freeze_backbone(registry.get_model("resnet20", classes=5,
                                                        input_shape=(16, 16, 3)))
    weighted = [layer.name for layer in model.layers if layer.weights]
    strategy = tf.distribute.MirroredStrategy()
    assert strategy.num_replicas_in_sync == 2  # tests/conftest.py: two logical CPUs
    twin, frozen = train_steps.qat_twin(model, strategy)
    assert len(frozen) == len(weighted) - 1 and len(twin.trainable_weights) == 2
    assert "quant_predictions" not in frozen
    assert all(isinstance(w.value, tf.distribute.DistributedValues) for w in twin.weights)
    twin, frozen = train_steps.qat_twin(model, strategy, unfreeze=True)
    assert frozen == []
    everything = registry.get_model("resnet20", classes=5, input_shape=(16, 16, 3))
    assert len(twin.trainable_weights) == len(everything.trainable_weights)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("t")
    out = str(root / "r20")
    train.fit("resnet20", dataset=write_digits(root / "d04", range(5), per_class=30, side=32),
              image_size=32, epochs=1, batch_size=8, strategy="default", verbose=0, out_dir=out)
    return out


def test_export_with_weights_carries_the_new_labels_to_mediapipe(source, tmp_path, capsys):
    folder = _named_folder(tmp_path / "named")
    out = tmp_path / "assets"
    argv = ["--model", "resnet20", "--res", "32", "--weights", source, "--dataset", folder,
            "--epochs", "3", "--fine-tune-lr", "0.003",
            "--unfreeze-from", "conv4", "--qat-epochs", "1", "--batch-size", "8",
            "--calibration", "32", "--min-agreement", "0", "--strategy", "default",
            "--out", str(out)]
    cli.run(tflite.main, argv, prog=tflite.PROG)
    printed = capsys.readouterr().out
    assert f"Starting from the weights {source}" in printed
    assert "QAT keeps the" in printed and "layers frozen in the float model frozen" in printed
    assert (out / "labels.txt").read_text().split() == sorted(NEW_LABELS)
    saved = json.loads((out / "resnet20_32_results.json").read_text())
    assert saved["weights"] == os.path.basename(source)  # a base name, never a local path
    head, tune = saved["transfer_phases"]
    # The head until early stopping (at most 200 epochs), then the last of --epochs 3.
    assert (head["phase"], head["epochs"]) == ("head", phases.HEAD_MAX_EPOCHS)
    assert head["stopping"]["epochs_run"] <= phases.HEAD_MAX_EPOCHS
    assert (tune["phase"], tune["epochs"], tune["lr"], tune["unfreeze_from"]) == (
        "fine_tune", 1, 0.003, "conv4")
    # The issue: a transfer run shipped its QAT file below the PTQ one. The file to ship
    # is never worse than the other INT8 file on the held-out images.
    rows = {r["model"]: r for r in saved["rows"]}
    shipped = rows[saved["shipped_model"]]
    assert shipped["file"] == "resnet20_32_int8.tflite" and shipped["ship"]
    assert shipped["accuracy"] >= max(rows[m]["accuracy"] for m in
                                      ("QAT INT8 TFLite", "PTQ INT8 TFLite"))
    assert saved["float_kept"]["phase"] in ("head", "fine_tune")
    try:
        python = mediapipe_env.python_path()
    except mediapipe_env.MediaPipeUnavailable as err:
        pytest.skip(str(err))
    images, _ = data.as_numpy(data.load(folder, image_size=32).val, limit=6)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    model_path = out / "resnet20_32_int8.tflite"
    ours = convert.Runner(model_path).predict(images).argmax(-1)
    results = mediapipe_env.classify(python, model_path, paths)
    assert [r["top1"]["category_name"] for r in results] == [sorted(NEW_LABELS)[i]
                                                            for i in ours]


@pytest.mark.parametrize("argv, message", [
    (["--weights", "imagenet", "--checkpoint", "x"], "give one of them"),
    (["--freeze-epochs", "1"], "--freeze-epochs applies to transfer learning: add --weights"),
    (["--fine-tune-lr", "0.01"], "--fine-tune-lr applies to transfer learning: add --weights"),
    (["--weights", "imagenet", "--fine-tune-lr", "0"], "--fine-tune-lr: expected a number > 0"),
    (["--weights", "imagenet", "--epochs", "2", "--freeze-epochs", "3"],
     r"--freeze-epochs \(3\) is larger than --epochs \(2\)"),
    (["--weights", "imagenet", "--model", "resnet18"], "resnet18 has no ImageNet weights"),
])
def test_export_bad_transfer_flags_one_line_exit_2(argv, message, tmp_path, capsys):
    err = refused(tflite.main, argv, prog=tflite.PROG, capsys=capsys, out=tmp_path / "assets")
    assert __import__("re").search(message, err), err

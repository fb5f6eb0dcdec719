"""tfresnet.training.transfer: weights from keras.applications files and earlier runs, the frozen
phase (bitwise), fine-tuning, resume in either phase, bad input, small folders, and
transfer beating training from scratch.

Slow tests (``-m slow``): the small-folder command, and transfer against its ceiling
(a logistic-regression probe) and against training from scratch.
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from helpers.cli_refusal import refused
from helpers.legacy_files import save_h5_weights
from tfresnet import data, train
from tfresnet.models import registry
from tfresnet.training import fitting, phases, transfer, transfer_fit

FAST = dict(strategy="default", batch_size=8, verbose=0)
HERE = os.path.dirname(os.path.abspath(__file__))


def write_digits(root, classes, per_class=None, side=16, seed=0):
    """sklearn's digits of ``classes`` as an image folder of ``side`` x ``side`` PNGs."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    for c in classes:
        index = np.flatnonzero(digits.target == c)
        if per_class:
            index = rng.choice(index, per_class, replace=False)
        os.makedirs(os.path.join(root, str(c)), exist_ok=True)
        for i in index:
            image = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8))
            image.resize((side, side), Image.BILINEAR).convert("RGB").save(
                os.path.join(root, str(c), f"{i}.png"))
    return str(root)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    return (write_digits(root / "d04", range(5), per_class=40),
            write_digits(root / "d59", range(5, 10), per_class=20))


@pytest.fixture(scope="module")
def source_run(folders, tmp_path_factory):
    """ResNet-20 trained 2 epochs on the digits 0-4 (16x16)."""
    out = str(tmp_path_factory.mktemp("runs") / "r20_d04")
    train.fit("resnet20", dataset=folders[0], image_size=16, epochs=2, out_dir=out, **FAST)
    return out


def _backbone_values(model):
    """Every weight of every layer but the classifier (BN moving statistics included)."""
    return {f"{layer.name}/{i}": np.array(w) for layer in model.layers
            if layer.name != transfer.HEAD for i, w in enumerate(layer.get_weights())}


# ----------------------------------------------------------------------------- phases


def _bn_values(values):
    """The BatchNormalization entries of :func:`_backbone_values`: gamma, beta (0, 1),
    moving mean and variance (2, 3)."""
    return {k: v for k, v in values.items() if "_bn/" in k}


@pytest.mark.parametrize("batchnorm", [False, True])
def test_frozen_phase_is_bitwise_then_fine_tuning_keeps_batchnorm(folders, source_run,
                                                                  tmp_path, batchnorm):
    """Phase 1 leaves the backbone bitwise as loaded; fine-tuning trains the convs and,
    by default, leaves every BatchNorm weight and statistic bitwise as loaded (inference
    mode); ``fine_tune_batchnorm=True`` updates them."""
    source, _, _ = train.load_run(source_run)
    out = str(tmp_path / "tr")
    train.fit("resnet20", weights=source_run, dataset=folders[1], image_size=16, epochs=2,
              freeze_epochs=1, out_dir=out, fine_tune_batchnorm=batchnorm or None, **FAST)
    before = _backbone_values(source)
    head, _, _ = train.load_run(os.path.join(out, "1_head"))
    after_head = _backbone_values(head)
    assert before.keys() == after_head.keys()
    assert all(np.array_equal(before[k], after_head[k]) for k in before), "frozen phase moved"
    moving = [k for k in _bn_values(before) if k.endswith(("/2", "/3"))]
    assert len(moving) == 2 * 19, "every BatchNorm layer's moving statistics are compared"
    tuned, _, _ = train.load_run(os.path.join(out, "2_fine_tune"))
    final = _backbone_values(tuned)
    changed = [k for k in before if not np.array_equal(before[k], final[k])]
    assert any(k.endswith("_conv/0") for k in changed), "fine-tuning updates conv kernels"
    bn_changed = [k for k in _bn_values(before) if k in changed]
    if batchnorm:
        assert any(k in bn_changed for k in moving), "BatchNorm statistics updated"
    else:
        assert bn_changed == [], "BatchNorm stayed in inference mode"
    # The classifier is new (5 classes 5-9) and trained in phase 1.
    assert not np.array_equal(head.get_layer("predictions").get_weights()[0],
                              source.get_layer("predictions").get_weights()[0])
    config = json.load(open(os.path.join(out, "config.json")))
    assert [p["phase"] for p in config["phases"]] == ["head", "fine_tune"]
    assert config["phases"][0]["trainable_weights"] == 64 * 5 + 5
    assert config["phases"][1]["batchnorm"] == ("trained" if batchnorm else "frozen")
    assert "new 5-class classifier" in config["weights_note"]
    assert os.path.isfile(os.path.join(out, "model.keras"))
    assert config["result"]["kept"]["phase"] in ("head", "fine_tune")


def test_rates_say_where_they_come_from(folders, source_run, tmp_path):
    """Every rate is the one used, with its source: the head's rule, the fine-tuning
    rule on the recipe's rate scaled to the batch (not 'given' when nothing was)."""
    result = train.fit("resnet20", weights=source_run, dataset=folders[1], image_size=16,
                       epochs=2, freeze_epochs=1, **FAST)
    head, tune = result.config["phases"]
    assert head["lr"] == phases.HEAD_LR == 0.1
    assert head["lr_source"] == "head rule: adam 0.1 for a linear classifier on fixed features"
    # resnet_cifar: lr 0.1 at batch 128; the run's batch is 8; fine-tuning a tenth.
    assert tune["lr"] == pytest.approx(0.1 * 8 / 128 * 0.1)
    assert tune["lr_source"] == ("fine_tune rule: 0.1 x the resnet_cifar recipe's 0.1 at "
                                 "batch 128, scaled to the global batch 8 (0.00625)")
    assert result.config["recipe_reason"] == "the resnet20 recipe"
    text = transfer_fit.transfer_summary(result)
    assert "lr 0.1 (head rule: adam 0.1" in text and "lr 0.000625 (fine_tune rule" in text
    given = train.fit("resnet20", weights=source_run, dataset=folders[1], image_size=16,
                      epochs=2, freeze_epochs=1, lr=0.05, fine_tune_lr=0.002, **FAST)
    assert [(p["lr"], p["lr_source"]) for p in given.config["phases"]] == [
        (0.05, "given"), (0.002, "given")]


def test_head_reaches_the_logistic_regression_probe(folders, source_run):
    """The classifier alone, trained to convergence on the cached features (early
    stopping on the validation loss), is as good as scikit-learn's logistic regression
    on the same features: measured here 0.78 vs the probe's 0.74 on the 50 validation
    images (each image is 2 points; early stopping after 53 of at most 200 epochs)."""
    from sklearn.linear_model import LogisticRegression

    result = train.fit("resnet20", weights=source_run, dataset=folders[1], image_size=16,
                       epochs=1, val_fraction=0.5, **FAST)
    assert [p["phase"] for p in result.config["phases"]] == ["head"]
    stop = result.config["phases"][0]["stopping"]
    assert stop["bound"] == phases.HEAD_MAX_EPOCHS and stop["epochs_run"] < stop["bound"]
    assert stop["why"].startswith("early stopping: the validation loss did not improve")
    loaded, _ = transfer.load_weights(source_run, "resnet20", classes=5,
                                      labels=result.labels, image_size=(16, 16))
    backbone = transfer.backbone_view(loaded)
    features = {}
    for part in ("train", "val"):
        images, labels = data.as_numpy(getattr(result.data, part))
        features[part] = backbone.predict(data.normalize(images), verbose=0), labels
    probe = LogisticRegression(max_iter=1000).fit(*features["train"]).score(*features["val"])
    assert result.val_accuracy >= probe - 0.04, (result.val_accuracy, probe)
    assert result.val_accuracy >= 0.6  # chance 0.2


def test_fine_tuning_that_diverges_keeps_the_head(folders, source_run, tmp_path):
    """A fine-tuning rate of 50 wrecks the network: the run keeps the phase-1 model as
    model.keras, says so, and the warning is in config.json.

    The head trains 5 epochs: measured, its validation accuracy is 0.40-0.60 for seeds
    0-3 (chance 0.2), where after one epoch it was at chance for most seeds (Keras 2 and
    Keras 3 alike), as the wrecked network is."""
    out = str(tmp_path / "tr")
    result = train.fit("resnet20", weights=source_run, dataset=folders[1], image_size=16,
                       epochs=7, freeze_epochs=5, fine_tune_lr=50.0, out_dir=out, **FAST)
    config = json.load(open(os.path.join(out, "config.json")))
    kept = config["result"]["kept"]
    head_epoch = config["phases"][0]["kept_epoch"]
    assert kept == {"phase": "head", "phase_epoch": head_epoch, "run_epoch": head_epoch,
                    "val_accuracy": pytest.approx(result.val_accuracy)}
    assert result.val_accuracy >= 0.3
    assert any(w.startswith("fine-tuning did not improve on the frozen backbone: kept the "
                            "phase-1 (head) model") for w in config["result"]["warnings"])
    head, _, _ = train.load_run(os.path.join(out, "1_head"))
    saved, _, _ = train.load_run(out)
    for a, b in zip(head.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert config["phases"][0]["val_accuracy"] > config["phases"][1]["val_accuracy"]
    assert f"kept: the head phase's epoch {head_epoch}" in transfer_fit.transfer_summary(result)
    assert re.search(r"^WARNING +fine-tuning did not improve", train.summary_table(result),
                     re.M)


def test_unfreeze_from_a_stage_keeps_the_earlier_layers_frozen(folders, source_run):
    model, _ = transfer.load_weights(source_run, "resnet20", classes=5,
                                     labels=[str(c) for c in range(5, 10)], image_size=(16, 16))
    transfer.unfreeze(model, "conv4")
    first = transfer.unfreeze_index(model, "conv4")
    assert model.layers[first].name.startswith("conv4_block1_")
    assert model.layers[first - 1].name.startswith("conv3_")
    assert not any(layer.trainable for layer in model.layers[:first] if layer.weights)
    later = model.layers[first:]
    assert all(layer.trainable for layer in later
               if not isinstance(layer, keras.layers.BatchNormalization))
    assert not any(layer.trainable for layer in later  # inference mode while fine-tuning
                   if isinstance(layer, keras.layers.BatchNormalization))
    transfer.unfreeze(model, "conv4", batchnorm=True)
    assert all(layer.trainable for layer in later)
    with pytest.raises(ValueError, match="did you mean 'conv4'"):
        transfer.unfreeze_index(model, "conv44")


def test_killed_in_phase_1_resumes_in_phase_1(folders, source_run, tmp_path):
    out = str(tmp_path / "tr")

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    args = dict(weights=source_run, dataset=folders[1], image_size=16, epochs=3,
                freeze_epochs=2, out_dir=out, **FAST)
    with pytest.raises(KeyboardInterrupt):
        train.fit("resnet20", callbacks=[Stop()], **args)
    assert os.path.isdir(os.path.join(out, "1_head", "backup"))
    assert not os.path.exists(os.path.join(out, "2_fine_tune"))
    result = train.fit("resnet20", **args)
    head_config = json.load(open(os.path.join(out, "1_head", "config.json")))
    assert head_config["result"]["resumed_at_epoch"] == 1  # phase 1 went on at epoch 2
    assert head_config["feature_cache"]["used"] is True  # features computed again on resume
    assert result.history["phase"] == ["head", "head", "fine_tune"]
    assert result.history["epoch"] == [1, 2, 3]
    # The run's own config.json has the measured figures every run's has (of the last
    # phase, fine-tuning, which ran in this session from its start).
    run_result = json.load(open(os.path.join(out, "config.json")))["result"]
    assert run_result["resumed_at_epoch"] == 0
    assert run_result["images_per_second"] == pytest.approx(result.images_per_second)
    assert run_result["images_per_second"] > 0


# ----------------------------------------------------------------------------- weights


def _keras_app(name, top, size):
    app = registry.model_info(name).imagenet
    kwargs = dict(weights=None, include_top=top, input_shape=(size, size, 3))
    if app == "MobileNet":
        return keras.applications.MobileNet(alpha=0.25, **kwargs)
    return getattr(keras.applications, app)(**kwargs)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in ("resnet101", "resnet152") else n
    for n in transfer.models_with_imagenet()])  # the deep two: ~35-60 s each, -m slow
@pytest.mark.parametrize("top", [True, False], ids=["top", "notop"])
def test_keras_applications_h5_loads_into_every_imagenet_backbone(name, top, tmp_path):
    size = 32
    keras.utils.set_random_seed(1)
    app = _keras_app(name, top, size)
    # Random BN statistics, so that a BN not loaded (or loaded in the wrong place) shows.
    for layer in app.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g, b, np.random.normal(0, 0.1, m.shape),
                               np.random.uniform(0.5, 1.5, v.shape)])
    path = save_h5_weights(app, tmp_path / f"{name}_{top}.h5")
    kwargs = {"alpha": 0.25, "res": size} if name == "mobilenet_v1" else {}
    model, note = transfer.load_weights(path, name, classes=3, labels=["a", "b", "c"],
                                        model_kwargs=kwargs, image_size=(size, size))
    assert "new 3-class classifier" in note and ("with classifier" if top else
                                                "without classifier") in note
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)
    last = "conv_pw_13_relu" if name == "mobilenet_v1" else "conv5_block3_out"
    theirs = keras.Model(app.input, app.get_layer(last).output)(x).numpy().mean(axis=(1, 2))
    ours = transfer.backbone_view(model)(x).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    # The new head trains on the frozen backbone.
    transfer.freeze_backbone(model)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    y = np.array([0, 1])
    loss0 = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, verbose=0)
    assert model.evaluate(x, y, verbose=0) < loss0


def test_another_architecture_names_both(tmp_path, source_run):
    app = keras.applications.MobileNet(alpha=0.5, weights=None, include_top=False,
                                       input_shape=(32, 32, 3))
    path = save_h5_weights(app, tmp_path / "m05.h5")
    with pytest.raises(ValueError, match=r"MobileNet \(alpha 0.5.*but the model is "
                                         r"mobilenet_v1 \(alpha 0.25\)"):
        transfer.load_weights(path, "mobilenet_v1", classes=3, labels=list("abc"),
                              model_kwargs={"alpha": 0.25, "res": 32})
    with pytest.raises(ValueError, match=r"holds resnet20 weights but the model is resnet32"):
        transfer.load_weights(source_run, "resnet32", classes=5, labels=list("abcde"),
                              image_size=(16, 16))


def test_fit_given_a_registry_keras_model_uses_its_family_recipe():
    mobilenet = registry.get_model("mobilenet_v1", alpha=0.25, res=32, classes=3)
    recipe, why = fitting.resolve_recipe(None, None, {}, mobilenet)
    assert recipe.name == "mobilenet" and "mobilenet_v1" in why
    other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2)], name="mine")
    recipe, why = fitting.resolve_recipe(None, None, {}, other)
    assert recipe.name == fitting.DEFAULT_RECIPE and "matches no registry model" in why


# ----------------------------------------------------------------------------- bad input


def _cli_error(capsys, argv):
    return refused(train.main, argv, prog=train.PROG, capsys=capsys)


@pytest.mark.parametrize("extra, match", [
    (["--weights", "nowhere/run"], "weights 'nowhere/run' do not exist"),
    (["--weights", "CORRUPT_H5", "--model", "mobilenet_v1", "--alpha", "0.25", "--res", "32",
      ], "cannot read .* as a Keras .h5 weights file"),
    (["--weights", "CORRUPT_KERAS"], "not a readable .keras model"),
    (["--weights", "SOURCE", "--model", "resnet32"], "resnet20 weights but the model is resnet32"),
    (["--weights", "imagenet", "--model", "resnet18"], "resnet18 has no ImageNet weights"),
    (["--weights", "imagenet", "--model", "alexnet"], "alexnet has no ImageNet weights"),
    (["--weights", "imagenet", "--model", "resnet20"], "resnet20 has no ImageNet weights"),
    (["--weights", "imagenet", "--model", "mobilenet_v1", "--alpha", "0.3", "--res", "128"],
     r"alpha in \[0.25, 0.5, 0.75, 1.0\]"),
    (["--weights", "imagenet", "--model", "mobilenet_v1", "--alpha", "0.25", "--res", "64"],
     r"res in \[128, 160, 192, 224\]"),
    (["--weights", "imagenet", "--model", "mobilenet_v1", "--alpha", "0.25", "--res", "128"],
     r"needs mobilenet_2_5_128_tf_no_top.h5 in .*/models .*run keras.applications.MobileNet"
     r"\(alpha=0.25, input_shape=\(128, 128, 3\), include_top=False, weights='imagenet'\)"),
    (["--weights", "SOURCE", "--epochs", "2", "--freeze-epochs", "3"],
     r"--freeze-epochs \(3\) is larger than --epochs \(2\)"),
    (["--weights", "SOURCE", "--unfreeze-from", "conv9"], "unknown --unfreeze-from 'conv9'"),
    (["--freeze-epochs", "1"], "--freeze-epochs applies to transfer learning: add --weights"),
    # the suite's two logical CPUs: two replicas (keras#19246)
    (["--weights", "SOURCE", "--strategy", "mirrored", "--steps-per-execution", "2"],
     "above 1 fails under 2 replicas"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(extra, match, folders, source_run,
                                                      tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    replace = {"CORRUPT_H5": str(tmp_path / "bad.h5"), "SOURCE": source_run,
               "CORRUPT_KERAS": str(tmp_path / "bad.keras")}
    extra = [replace.get(a, a) for a in extra]
    if "--model" not in extra:
        extra += ["--model", "resnet20"]
    out = tmp_path / "out"
    cifar = registry.model_info(extra[extra.index("--model") + 1]).family == "resnet_cifar"
    size = ["--image-size", "16"] if cifar else []
    err = _cli_error(capsys, ["--dataset", folders[1], *size, "--out", str(out),
                              "--strategy", "default", *extra])
    assert re.search(match, err), err
    assert not out.exists()


def test_bad_weights_process_level_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tfresnet.train", "--model", "resnet18", "--weights",
         "imagenet", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        line for line in proc.stderr.strip().splitlines() if "resnet18 has no ImageNet" in line]
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- health


def test_a_collapsed_or_diverged_run_says_so(tmp_path, folders):
    out = str(tmp_path / "run")
    # lr 1e4 makes SGD blow up: the loss diverges and the model answers one class.
    result = train.fit("resnet20", dataset=folders[1], image_size=16, epochs=2, lr=1e4,
                       out_dir=out, **FAST)
    warnings = json.load(open(os.path.join(out, "config.json")))["result"]["warnings"]
    assert any(w.startswith("collapsed") for w in warnings), warnings
    assert any(w.startswith("diverged") for w in warnings), warnings
    assert re.search(r"^WARNING +collapsed: validation accuracy", train.summary_table(result),
                     re.M)
    # A healthy run has none: see test_small_folder_reaches_0_9_with_the_defaults.


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_small_folder_reaches_0_9_with_the_defaults(tmp_path):
    """The issue's case: ~300 images in 5 classes (digits 0-4, 60 a class, 64x64 PNG),
    MobileNet v1 0.25 at 64 for 10 epochs, all other flags default. Before the
    small-data defaults this run stayed at the majority share (0.20); measured here
    1.0000 (batch 8, the recipe's lr 0.045, no augmentation). About 1-2 minutes."""
    folder = write_digits(tmp_path / "plants", range(5), per_class=60, side=64)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tfresnet.train", "--model", "mobilenet_v1", "--alpha",
         "0.25", "--res", "64", "--dataset", folder, "--epochs", "10", "--out", str(out)],
        capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.load(open(out / "config.json"))["result"]
    assert result["val_accuracy"] >= 0.9, proc.stdout[-1500:]
    assert result["warnings"] == []


# Where training from scratch on the same few images beats the backbone's ceiling (its
# features' logistic-regression probe), transfer cannot beat it: measured, not a target.
SCRATCH_ABOVE_THE_PROBE = {
    "mobilenet_v1_0.25": "MobileNet 0.25 trained on the digits 0-4 gives features whose "
                         "probe is below training from scratch on the folder's images of "
                         "5-9 (docs/testing.md)"}


@pytest.mark.slow
@pytest.mark.parametrize("key", ["resnet20", "mobilenet_v1_0.25"])
def test_transfer_reaches_the_probe_and_beats_scratch(key, tmp_path):
    """benchmarks/transfer_quality.py for one seed and 10 images a class: a backbone
    trained on the digits 0-4, the digits 5-9 learnt from a folder with the defaults,
    tested on the folder's other images. Targets: at least 0.85 of a logistic-regression
    probe on the same features (the benchmark's lowest seed; it measures 1.05-1.14 here),
    INT8 within 2 points, the kept phase the better one on validation, and above training
    from scratch unless scratch beats the probe (SCRATCH_ABOVE_THE_PROBE: then xfail with
    the figures). About 3-5 minutes each."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks"))
    import transfer_quality as bench

    source, _ = bench.train_source(key, str(tmp_path))
    row = bench.measure_one(key, 10, 0, source, str(tmp_path))
    assert row["transfer"] >= bench.TARGET_MIN * row["probe"], row
    assert row["transfer"] - row["int8"] <= bench.INT8_POINTS, row
    assert row["val_kept"] >= row["val_head"], row
    if key in SCRATCH_ABOVE_THE_PROBE and row["scratch"] >= max(row["transfer"], row["probe"]):
        pytest.xfail(f"{SCRATCH_ABOVE_THE_PROBE[key]}; measured: transfer "
                     f"{row['transfer']:.3f}, probe {row['probe']:.3f}, scratch "
                     f"{row['scratch']:.3f}")
    assert row["transfer"] > row["scratch"], row

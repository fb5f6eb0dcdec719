"""tfresnet.train and tfresnet.training.recipes: recipes, 2 replicas = 1 device, real learning,
resume after an interruption, run directories, CLI errors.

conftest.py gives this process 2 logical CPU devices, so the default "mirrored"
strategy trains on 2 replicas here.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.cli_refusal import refused
from tfresnet import data, train
from tfresnet.models import registry
from tfresnet.training import optim, recipes, rundir, strategy
from tfresnet.training.config import FitConfig

HERE = os.path.dirname(os.path.abspath(__file__))
from helpers.mw_worker import small_cnn  # noqa: E402

# ----------------------------------------------------------------------------- recipes


def test_presets_hold_the_papers_values():
    cifar = recipes.get_recipe("resnet_cifar")
    assert (cifar.optimizer, cifar.momentum, cifar.weight_decay) == ("sgd", 0.9, 1e-4)
    assert (cifar.lr, cifar.ref_batch, cifar.total_steps) == (0.1, 128, 64_000)
    imagenet = recipes.get_recipe("resnet_imagenet")
    assert (imagenet.lr, imagenet.ref_batch, imagenet.schedule) == (0.1, 256, "plateau")
    alexnet = recipes.get_recipe("alexnet")
    assert (alexnet.lr, alexnet.weight_decay, alexnet.momentum) == (0.01, 5e-4, 0.9)
    assert recipes.get_recipe("alexnet_bn").lr > alexnet.lr
    mobile = recipes.get_recipe("mobilenet")
    assert (mobile.optimizer, mobile.rho, mobile.momentum, mobile.epsilon) == (
        "rmsprop", 0.9, 0.9, 1.0)
    assert mobile.depthwise_weight_decay == 0.0
    assert {registry.model_info(m).recipe for m in registry.list_models()} <= set(
        recipes.RECIPES)
    assert cifar.scaled_lr(256) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="did you mean 'resnet_cifar'"):
        recipes.get_recipe("resnet_cifr")
    with pytest.raises(ValueError, match="Unknown recipe field"):
        cifar.replace(learning_rate=1)
    with pytest.raises(ValueError, match=r"lr must be a number > 0\. Received: lr=0"):
        cifar.replace(lr=0)


def _lr_at(schedule, step):
    return float(schedule(step))


def test_steps_schedule_is_the_papers_in_iterations_and_fractions_for_short_runs():
    cifar = recipes.get_recipe("resnet_cifar")
    # The paper's length: /10 at exactly 32k and 48k of 64k iterations.
    paper = optim.lr_schedule(cifar, lr=0.1, steps_per_epoch=391, total_steps=64_000,
                              depth=20)
    assert [_lr_at(paper, s) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == \
        pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    # A short run keeps the same fractions: 120 steps -> decays at 60 and 90.
    short = optim.lr_schedule(cifar, lr=0.1, steps_per_epoch=12, total_steps=120, depth=20)
    assert [_lr_at(short, s) for s in (59, 60, 89, 90)] == pytest.approx(
        [0.1, 0.01, 0.01, 0.001])
    # ResNet-110 warms up at lr/10 for 400 of 64k iterations (0.625% of a short run).
    depth = optim.model_depth(registry.get_model("resnet110", input_shape=(8, 8, 3)))
    assert depth == 110
    warm = optim.lr_schedule(cifar, lr=0.1, steps_per_epoch=391, total_steps=64_000,
                             depth=depth)
    assert [_lr_at(warm, s) for s in (0, 399, 400, 32_000)] == pytest.approx(
        [0.01, 0.01, 0.1, 0.01])
    mobile = optim.lr_schedule(recipes.get_recipe("mobilenet"), lr=0.045, steps_per_epoch=10,
                               total_steps=100, depth=28)
    assert [_lr_at(mobile, s) for s in (9, 10, 25)] == pytest.approx(
        [0.045, 0.045 * 0.98, 0.045 * 0.98**2])


def test_weight_decay_is_l2_on_kernels_only():
    base = registry.get_model("mobilenet_v1", alpha=0.25, res=32, classes=10)
    net = optim.prepare_model(base, weight_decay=4e-5, depthwise_weight_decay=0.0)
    kernels = [layer.kernel for layer in net.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(net.losses) == len(kernels) == 15  # conv1, 13 pointwise, the classifier
    expected = sum(2e-5 * float(tf.reduce_sum(k * k)) for k in kernels)
    assert float(tf.add_n(net.losses)) == pytest.approx(expected, rel=1e-5)
    for a, b in zip(base.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    decayed = optim.prepare_model(base, weight_decay=4e-5, depthwise_weight_decay=1e-5)
    assert len(decayed.losses) == 15 + 13  # + the 13 depthwise kernels


# ----------------------------------------------------------------------------- 2 replicas


def _one_step(strategy, base, images, labels, *, sync_batchnorm):
    with strategy.scope():
        net = optim.prepare_model(base, weight_decay=1e-4, sync_batchnorm=sync_batchnorm)
        optim.compile_model(net, optim.make_optimizer(recipes.get_recipe("resnet_cifar"), 0.1))
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(len(labels))
    net.fit(ds, epochs=1, verbose=0)
    assert int(net.optimizer.iterations.numpy()) == 1
    return {v.path: v.numpy() for v in net.weights}


def test_two_replicas_step_equals_one_device_step():
    """One SGD step of ResNet-20 (BN, weight decay, momentum) on a global batch of 8.

    With BatchNormalization synchronized over the replicas (``sync_batchnorm``), 2
    replicas x 4 images give the weights of a plain single-device step on 8 images:
    gradients are all-reduced, the loss is divided by the global batch and the weight
    decay by the replicas, and BN sees the statistics of all 8 images. Every weight is
    equal, the BN moving variances too: Keras 3's BatchNormalization folds the biased
    batch variance into them on one device as over the replicas (Keras 2's fused BN
    applied Bessel's correction n / (n - 1) on one device). With the default
    per-replica BN the results differ (each replica normalizes its own 4 images), which
    is why ``--sync-bn`` exists; tests/test_multiworker.py shows per-replica BN giving
    the same weights on 2 workers as on 2 local replicas.
    """
    keras.utils.set_random_seed(1)
    base = registry.get_model("resnet20", input_shape=(16, 16, 3), classes=10)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 16, 16, 3)).astype("float32")
    labels = rng.integers(0, 10, 8).astype("int32")
    two = strategy.mirrored_strategy(["/cpu:0", "/cpu:1"])
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert two.num_replicas_in_sync == 2
    start = {v.path: v.numpy() for v in base.weights}

    replicas = _one_step(two, base, images, labels, sync_batchnorm=True)
    single = _one_step(one, base, images, labels, sync_batchnorm=False)
    per_replica = _one_step(two, base, images, labels, sync_batchnorm=False)
    assert replicas.keys() == single.keys() == start.keys()
    assert len(replicas) == len(base.weights)  # one entry a weight: paths are unique
    moved = max(float(np.max(np.abs(replicas[k] - start[k]))) for k in replicas)
    assert moved > 1e-2
    for k in replicas:
        np.testing.assert_allclose(replicas[k], single[k], rtol=1e-5, atol=1e-6, err_msg=k)
    apart = max(float(np.max(np.abs(per_replica[k] - single[k]))) for k in single)
    assert apart > 1e-3, apart


# ----------------------------------------------------------------------------- learning


def test_resnet20_learns_digits_and_writes_a_run_dir(tmp_path):
    run = tmp_path / "run"
    result = train.fit("resnet20", image_size=16, epochs=12, out_dir=run, seed=0, verbose=2)
    print(f"\nResNet-20 on digits 16x16, 12 epochs, 2 replicas: val accuracy "
          f"{result.val_accuracy:.4f} (best {result.best_val_accuracy:.4f} at epoch "
          f"{result.best_epoch}), {result.images_per_second:.0f} images/s, "
          f"{result.wall_time:.0f} s")
    assert result.val_accuracy >= 0.90
    assert result.config["replicas"] == 2 and result.config["global_batch"] == 128

    assert sorted(os.listdir(run)) == sorted(
        ["best.keras", "config.json", "history.csv", "labels.txt", "model.keras"]
        + (["logs"] if rundir.tensorboard_available() else []))
    model, config, labels = train.load_run(run)
    assert labels == [str(d) for d in range(10)]
    assert config["model"] == "resnet20" and config["image_size"] == [16, 16]
    assert config["normalization"] == {"mean": 128.0, "std": 128.0}
    assert config["result"]["val_accuracy"] == pytest.approx(result.val_accuracy)
    rows = train.read_history(str(run))
    assert [r["epoch"] for r in rows] == list(range(1, 13))
    # /10 after 50% and 75% of the 144 steps: epochs 7 and 10 start at steps 72 and 108.
    assert [r["lr"] for r in rows] == pytest.approx([0.1] * 6 + [0.01] * 3 + [0.001] * 3)
    # The saved model gives the accuracy fit reported, from raw validation pixels.
    images, y = data.as_numpy(result.data.val)
    predicted = model.predict(data.normalize(images), verbose=0).argmax(-1)
    assert float(np.mean(predicted == y)) == pytest.approx(result.val_accuracy, abs=1e-9)
    # During training each replica evaluated with its own BN moving averages.
    assert abs(rows[-1]["val_accuracy"] - result.val_accuracy) < 0.03


# ----------------------------------------------------------------------------- resume


class _Interrupt(keras.callbacks.Callback):
    """Records the weights at the end of epoch ``k`` (after the backup) and stops."""

    def __init__(self, k):
        super().__init__()
        self.k, self.saved = k, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.k:
            self.saved = [w.copy() for w in self.model.get_weights()]
            raise KeyboardInterrupt


class _FirstEpoch(keras.callbacks.Callback):
    """Records the first epoch index, the weights and optimizer step it starts from."""

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self, "epoch"):
            self.epoch, self.weights = epoch, self.model.get_weights()
            self.iterations = int(self.model.optimizer.iterations.numpy())


RESUME_ARGS = dict(image_size=8, epochs=4, steps_per_epoch=3, batch_size=16, seed=5,
                   recipe="resnet_cifar", augment="none", verbose=0)


def test_a_users_keras3_callback_is_called():
    """``callbacks=`` takes the user's own Keras 3 callbacks, run after the package's."""
    seen = []

    class Counter(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", batch, float(logs["loss"])))

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", epoch, float(logs["val_accuracy"])))

    result = train.fit(small_cnn(), image_size=8, epochs=2, steps_per_epoch=3, batch_size=16,
                       recipe="resnet_cifar", strategy="default", augment="none", verbose=0,
                       callbacks=[Counter()])
    assert [s[:2] for s in seen] == [("batch", 0), ("batch", 1), ("batch", 2), ("epoch", 0),
                                     ("batch", 0), ("batch", 1), ("batch", 2), ("epoch", 1)]
    assert [s[2] for s in seen if s[0] == "epoch"] == result.history["val_accuracy"]
    assert result.config["steps_per_execution"] == 1  # batch hooks: every batch


@pytest.mark.parametrize("callback, expected", [
    (keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None), 1),
    (keras.callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: None), 1),
    (keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None), 8),
    (keras.callbacks.EarlyStopping(), 8),
])
def test_batch_hooks_make_one_step_a_call(callback, expected):
    from tfresnet.training import fitting

    config = FitConfig.create(callbacks=(callback,))
    assert fitting._steps_per_execution(config, replicas=1) == expected


def test_steps_per_execution_gives_the_same_run():
    """Several steps per call of the train function train exactly the weights one step
    per call does: the default (the largest divisor of steps_per_epoch up to 8: 6 here)
    and 4 given, whose batch callback sees the last batch of each call. A number that
    does not divide steps_per_epoch is refused: Keras would train whole calls."""
    common = dict(image_size=8, epochs=2, steps_per_epoch=12, batch_size=16, seed=3,
                  recipe="resnet_cifar", strategy="default", augment="none", verbose=0)
    ends = []

    class Ends(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(batch)

    one = train.fit(small_cnn(), steps_per_execution=1, **common)
    auto = train.fit(small_cnn(), **common)
    four = train.fit(small_cnn(), steps_per_execution=4, callbacks=[Ends()], **common)
    assert [run.config["steps_per_execution"] for run in (one, auto, four)] == [1, 6, 4]
    assert ends == [3, 7, 11, 3, 7, 11]
    for run in (auto, four):
        assert run.history["loss"] == one.history["loss"]
        for a, b in zip(one.model.get_weights(), run.model.get_weights()):
            np.testing.assert_array_equal(a, b)
    # one pass over the data (90 steps of 16 images): the last call ends early
    once = {**common, "steps_per_epoch": None, "epochs": 1}
    one, auto = (train.fit(small_cnn(), steps_per_execution=n, **once) for n in (1, None))
    assert auto.config["steps_per_execution"] == 8
    for a, b in zip(one.model.get_weights(), auto.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"^steps_per_execution must divide steps_per_epoch "
                                         r"\(12\): .* Received: steps_per_execution=5$"):
        train.fit(small_cnn(), steps_per_execution=5, **common)
    # Two replicas (the suite's two logical CPUs): one step a call, as Keras 3 needs
    mirrored = {**common, "strategy": "mirrored", "epochs": 1}
    assert train.fit(small_cnn(), **mirrored).config["steps_per_execution"] == 1
    with pytest.raises(ValueError, match=r"^steps_per_execution above 1 fails under 2 "
                                         r"replicas .*keras#19246.* steps_per_execution=2$"):
        train.fit(small_cnn(), steps_per_execution=2, **mirrored)


def test_mixed_precision_and_xla_train_and_keep_a_float32_model(tmp_path):
    """bfloat16 compute on the CPU (float32 variables, float32 softmax), XLA-compiled
    steps; the run's model.keras is plain float32 and loads."""
    result = train.fit(small_cnn(), image_size=8, epochs=2, steps_per_epoch=3, batch_size=16,
                       recipe="resnet_cifar", strategy="default", augment="none", verbose=0,
                       mixed_precision=True, jit_compile=True, out_dir=tmp_path / "run")
    assert result.config["mixed_precision"] is True and result.config["jit_compile"] is True
    assert all(np.isfinite(result.history["loss"]))
    model, _, _ = train.load_run(tmp_path / "run")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert {w.dtype for w in model.weights} == {"float32"}
    start = small_cnn().get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(start, model.get_weights())) > 1e-3


def test_interrupted_run_resumes_at_the_next_epoch_with_the_saved_weights(tmp_path):
    run, k = tmp_path / "run", 2
    stop = _Interrupt(k)
    with pytest.raises(KeyboardInterrupt):
        train.fit(small_cnn(), out_dir=run, callbacks=[stop], **RESUME_ARGS)
    first_rows = train.read_history(str(run))
    assert [r["epoch"] for r in first_rows] == [1, 2]
    assert not (run / "model.keras").exists()

    # Other settings in the same folder: refused, nothing changed.
    with pytest.raises(ValueError, match="interrupted run with other settings"):
        train.fit(small_cnn(), out_dir=run, **{**RESUME_ARGS, "seed": 6})
    with pytest.raises(ValueError, match=r"precise_bn\.enabled=True \(now False\)"):
        train.fit(small_cnn(), out_dir=run, **{**RESUME_ARGS, "precise_bn": False})

    first = _FirstEpoch()
    result = train.fit(small_cnn(), out_dir=run, callbacks=[first], **RESUME_ARGS)
    assert first.epoch == k and result.initial_epoch == k
    assert first.iterations == k * RESUME_ARGS["steps_per_epoch"]
    for saved, restored in zip(stop.saved, first.weights):
        np.testing.assert_array_equal(saved, restored)
    rows = train.read_history(str(run))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[:2] == first_rows
    assert result.history["epoch"] == [1, 2, 3, 4]
    assert not (run / "backup").exists() and (run / "model.keras").exists()

    with pytest.raises(ValueError, match="already holds a finished run"):
        train.fit(small_cnn(), out_dir=run, **RESUME_ARGS)


# ----------------------------------------------------------------------------- load_run


def test_load_run_rejects_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ValueError, match="no such run directory"):
        train.load_run(tmp_path / "nothing")
    with pytest.raises(ValueError, match="has no model.keras"):
        train.load_run(tmp_path)
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .keras model"):
        train.load_run(bad)


# ----------------------------------------------------------------------------- CLI errors


@pytest.fixture
def empty_class_folder(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "cat" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return str(root)


BAD_ARGS = {
    "unknown dataset": (["--dataset", "digitz"], "unknown dataset 'digitz'"),
    "missing folder": (["--dataset", "/no/such/folder"], "no such folder"),
    "empty class folder": (["--dataset", "{empty}"], "has no images"),
    "unknown model": (["--model", "resnet21"], "Unknown model 'resnet21'"),
    "batch size 0": (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1. Received: 0"),
    "batch above the data": (["--batch-size", "1000"], "larger than the 1438 training"),
    "non-numeric batch": (["--batch-size", "many"],
                          "argument --batch-size: expected an integer. Received: 'many'"),
    "non-numeric lr": (["--lr", "fast"], "argument --lr: expected a number. Received: 'fast'"),
    "zero epochs": (["--epochs", "0"], "argument --epochs: expected an integer >= 1 and <= 100000"),
    "negative lr": (["--lr", "-1"], "argument --lr: expected a number > 0"),
    "alpha on resnet": (["--alpha", "0.5"], "do(es) not apply to 'resnet20'"),
    "image too small": (["--image-size", "4"], "needs images of at least 8x8"),
    "no TF_CONFIG": (["--strategy", "multiworker"], "needs the TF_CONFIG"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys,
                                                            monkeypatch, empty_class_folder):
    argv, message = BAD_ARGS[case]
    argv = [a.replace("{empty}", empty_class_folder) for a in argv]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    err = refused(train.main, argv, prog=train.PROG, capsys=capsys, out=tmp_path / "out")
    assert err.startswith(train.PROG), err
    assert message in err


def test_cli_error_is_the_whole_line(tmp_path, capsys):
    """The full line, in this process (tests/cli/test_bad_input.py runs the real command)."""
    missing = str(tmp_path / "missing")
    err = refused(train.main, ["--dataset", missing], prog=train.PROG, capsys=capsys,
                  out=tmp_path / "out")
    assert err == (f"{train.PROG}: error: unknown dataset {missing!r}: expected 'digits', "
                   f"'tfds:<name>' or an existing image folder (no such folder).")


def test_finished_run_is_not_overwritten_without_asking(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"x")
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a finished run"):
        train.fit(small_cnn(), out_dir=run, **RESUME_ARGS)
    assert (run / "model.keras").read_bytes() == b"x"
    assert json.loads((run / "config.json").read_text()) == {}

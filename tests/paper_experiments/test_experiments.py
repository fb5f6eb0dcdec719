"""The experiments end to end on tiny settings: curves CSV, PNG figure, summary text.

Each experiment runs through ``experiments.command.main`` with ``--quick`` (a few
steps), and the files it writes are checked against each other: every model in the
CSV, steps increasing, errors in [0, 1], a real PNG of a sensible size, and a
summary whose figures and verdicts are the ones the CSV gives.
"""

import csv
import dataclasses
import os
import re
import struct
import types

import keras
import numpy as np
import pytest

import tfresnet
from experiments import batchnorm, command, common, gradients, multipliers, responses, separable, shortcuts
from helpers.cli_refusal import refused
from tfresnet import data

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk; fails on anything but a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def check_png(path, min_width=500, min_height=300):
    assert os.path.isfile(path)
    width, height = png_size(path)
    assert width >= min_width and height >= min_height, (width, height)
    assert 5_000 < os.path.getsize(path) < 2_000_000


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def check_curves(path, models, steps):
    """The curves CSV: columns, every model, increasing steps ending at ``steps``."""
    columns, rows = read_csv(path)
    assert tuple(columns) == common.CSV_COLUMNS
    curves = common.read_curves_csv(path)
    assert sorted(curves) == sorted(models)
    for model, points in curves.items():
        logged = [p[0] for p in points]
        assert logged == sorted(set(logged)) and logged[-1] == steps, (model, logged)
        assert all(0.0 <= e <= 1.0 for _, train, val in points for e in (train, val))
    return curves


def table_row(summary, key):
    """The cells of the Markdown table row of ``key``."""
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == key:
            return cells
    raise AssertionError(f"no table row for {key!r} in the summary")


def pct(cell):
    return float(cell.rstrip("%")) / 100


# ----------------------------------------------------------------------------- degradation


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_degradation_end_to_end(tmp_path):
    out = tmp_path / "degradation"
    result = command.main(["degradation", "--quick", "--depths", "8", "14", "--steps", "24",
                               "--log-every", "8", "--batch-size", "32", "--out", str(out)])
    assert set(result.files) == {"png", "csv", "summary"}
    curves = check_curves(out / "curves.csv", ["plain8", "plain14", "resnet8", "resnet14"], 24)
    assert [len(p) for p in curves.values()] == [3] * 4
    check_png(out / "degradation.png")
    summary = (out / "summary.md").read_text()
    assert summary == result.summary
    for model, points in curves.items():
        row = table_row(summary, model)
        assert pct(row[1]) == pytest.approx(points[-1][1], abs=5e-5)  # final train error
        assert pct(row[2]) == pytest.approx(points[-1][2], abs=5e-5)  # final val error
        assert pct(row[3]) == pytest.approx(min(p[2] for p in points), abs=5e-5)
    # The verdicts follow the CSV figures.
    final = {m: p[-1][1] for m, p in curves.items()}
    degraded = final["plain14"] - final["plain8"] > common.TOLERANCE
    assert ("is ABOVE plain-8's" in summary) == degraded
    assert ("is NOT above plain-8's" in summary) == (not degraded)
    fixed = final["resnet14"] - final["resnet8"] <= common.TOLERANCE
    assert ("at or below ResNet-8's" in summary) == fixed
    assert "--quick" in summary and "far too small" in summary
    assert "appears" not in summary and "as the paper reports" not in summary  # no verdict
    # The setup states what train.fit really ran with.
    config = result.curves[0].config
    assert common.describe_training(config) in summary
    assert (config["global_batch"], config["lr"], config["augment"]) == (32, 0.025, "none")
    assert "24 steps of 32 images" in summary and "augmentation 'none'" in summary
    # 24 steps of 32 digits are enough for ResNet-8 to learn something (chance: 90% error).
    assert curves["resnet8"][-1][2] < 0.75


# ----------------------------------------------------------------------------- batchnorm


def test_without_batchnorm_is_the_same_network_minus_bn():
    keras.utils.set_random_seed(0)
    model = tfresnet.get_model("plain20", input_shape=(8, 8, 3), classes=10)
    twin = common.without_batchnorm(model)
    bns = [layer for layer in model.layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 19
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in twin.layers)
    # Each BN (gamma, beta, moving mean and variance: 4C) gives way to a conv bias (C).
    channels = sum(int(bn.gamma.shape[0]) for bn in bns)
    assert twin.count_params() == model.count_params() - 3 * channels
    for layer in twin.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            np.testing.assert_array_equal(kernel, model.get_layer(layer.name).get_weights()[0])
            assert not bias.any()
    x = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    assert twin.predict(x, verbose=0).shape == (4, 10)


def test_target_rules():
    curves = [common.Curve(key, key, 0.01, steps=[10, 20, 30], train_error=[0.5] * 3,
                                val_error=errors)
              for key, errors in (("nobn", [0.6, 0.2, 0.03]), ("bn", [0.1, 0.04, 0.05]),
                                  ("bn_x5", [0.08, 0.02, 0.01]))]
    target, rule = batchnorm.resolve_target("common", curves)
    assert (target, rule) == (pytest.approx(0.96), "common")  # every run reaches 96%
    assert [c.steps_to(target) for c in curves] == [30, 20, 20]
    target, rule = batchnorm.resolve_target("baseline", curves)
    assert (target, rule) == (pytest.approx(0.97), "baseline")  # no BN's best
    assert [c.steps_to(target) for c in curves] == [30, None, 20]
    assert batchnorm.resolve_target(0.5, curves) == (0.5, "given")


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_batchnorm_end_to_end(tmp_path):
    out = tmp_path / "bn"
    result = command.main(["batchnorm", "--quick", "--steps", "6", "--lr-multipliers", "30",
                           "--out", str(out)])
    keys = ["nobn", "bn", "bn_x30"]
    curves = check_curves(out / "curves.csv", keys, 6)
    check_png(out / "batchnorm.png", min_width=400)
    check_png(out / "percentiles.png", min_width=400)
    summary = (out / "summary.md").read_text()
    # Target = the highest accuracy every run that did not fail reaches, as the CSV says.
    healthy = [c.key for c in result.curves if common.run_failure(c, 10) is None] or keys
    target = min(1 - min(p[2] for p in curves[k]) for k in healthy)
    shown = re.search(r"Target validation accuracy: ([0-9.]+)%", summary).group(1)
    assert float(shown) / 100 == pytest.approx(target, abs=5e-5)
    assert "--lr 0.00125" in summary  # 0.01 at batch 128, scaled to the quick batch of 16
    for key, lr in (("nobn", 0.00125), ("bn", 0.00125), ("bn_x30", 0.0375)):
        row = table_row(summary, key)
        assert float(row[1]) == pytest.approx(lr)
        reached = [s for s, _, v in curves[key] if 1 - v >= target - 1e-9]
        assert row[2] == (str(reached[0]) if reached else "not reached")
        assert pct(row[4]) == pytest.approx(1 - curves[key][-1][2], abs=5e-5)
    assert [c.key for c in result.curves] == keys
    # Fig. 1 (b, c): percentiles of one unit at step 0 and every logged step, ordered.
    _, rows = read_csv(out / "percentiles.csv")
    assert [(r["model"], int(r["step"])) for r in rows] == \
        [(k, s) for k in keys for s in (0, 2, 4, 6)]
    assert all(float(r["p15"]) <= float(r["p50"]) <= float(r["p85"]) for r in rows)
    probe = batchnorm.ActivationProbe("x", None, 2)
    probe.values = [[float(r[f"p{q}"]) for q in (15, 50, 85)] for r in rows
                    if r["model"] == "nobn"]
    drift, _ = batchnorm.stability(probe)
    assert f"the median moved {drift:.2f} widths without BN" in summary


def test_stability_of_an_activation_distribution():
    probe = batchnorm.ActivationProbe("x", None, 1)
    probe.values = [[-1, 0, 1], [-1, 0.5, 2], [0, 2, 4]]  # median moves 2, widths 2, 3, 4
    drift, width = batchnorm.stability(probe)
    assert (drift, width) == (pytest.approx(2 / 3), pytest.approx(2.0))


# ----------------------------------------------------------------------------- multipliers


def test_resolution_grid_steps_down_by_32_like_the_paper():
    assert multipliers.resolutions_below(224) == (224, 192, 160, 128)
    assert multipliers.resolutions_below(128) == (128, 96, 64, 32)
    assert multipliers.resolutions_below(64) == (64, 32)


@pytest.mark.slow  # ~30-75 s: the default suite stays under 12 min; -m slow runs it
def test_multipliers_end_to_end(tmp_path):
    out = tmp_path / "mult"
    result = command.main(["multipliers", "--quick", "--out", str(out)])
    columns, rows = read_csv(out / "results.csv")
    assert tuple(columns) == multipliers.MULTIPLIER_COLUMNS
    assert [(float(r["alpha"]), int(r["res"])) for r in rows] == [(0.5, 32), (0.25, 32)]
    for r in rows:
        model = tfresnet.mobilenet_v1(alpha=float(r["alpha"]), res=32, classes=10)
        assert int(r["params"]) == model.count_params()
        assert 0 <= float(r["accuracy_float32"]) <= 1 and 0 <= float(r["accuracy_int8"]) <= 1
        assert float(r["float32_ms"]) > 0 and float(r["int8_ms"]) > 0
    macs = [int(r["macs"]) for r in rows]
    # Pointwise convs dominate: halving alpha cuts MACs by about 4 (paper: 149M -> 41M).
    assert 2.8 < macs[0] / macs[1] < 4.2
    check_png(out / "multipliers.png")
    summary = (out / "summary.md").read_text()
    for r in rows:
        cells = table_row(summary, f"{multipliers.alpha_text(float(r['alpha']))}/{r['res']}")
        assert float(cells[1]) == pytest.approx(int(r["macs"]) / 1e6, abs=0.05)
        assert pct(cells[3]) == pytest.approx(float(r["accuracy_float32"]), abs=5e-4)
    assert os.path.isfile(result.files["compare"])  # export.compare's own report
    # The training line is what each model was trained with (its run's config.json):
    # the short-run preset, no augmentation, whatever the MobileNet recipe's name says.
    for r in rows:
        config = multipliers.run_config(out / "compare", r["key"])
        assert config["augment"] == "none" and config["recipe"] == "mobilenet"
        assert common.describe_training(config) in summary
    assert "augmentation 'none'" in summary and "'mobilenet' (recipe" not in summary
    assert "augmentation 'mobilenet'" not in summary


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, text", [
    (["degradation", "--steps", "0"], "argument --steps: expected an integer >= 1"),
    (["degradation", "--depths", "20", "21"], "6n+2"),
    (["batchnorm", "--model", "resnet2O"], "did you mean"),
    (["batchnorm", "--target", "1.5"], "--target"),
    (["batchnorm", "--target", "best"], "'common' or 'baseline'"),
    (["degradation", "--dataset", "no/such/folder"], "no/such/folder"),
    (["multipliers", "--resolutions", "40"], "--resolutions must be a multiple of 32"),
    (["multipliers", "--alphas", "0.01"], "--alphas"),
    (["shortcuts", "--depth", "21"], "argument --depth: depth must be 6n+2"),
    (["gradients", "--depth", "4"], "argument --depth: depth must be 6n+2"),
    (["responses", "--depths", "56", "20"], "SHALLOW < DEEP"),
    (["responses", "--depths", "20", "21"], "argument --depths: depth must be 6n+2"),
    (["separable", "--alpha", "0"], "argument --alpha: expected a number > 0"),
    (["separable", "--image-size", "48"], "multiple of 32"),
    (["batchnorm", "--lr-multipliers", "5", "-1"],
     "argument --lr-multipliers: expected a number > 0 and <= 100"),
    # bounded as tfresnet.train and export.tflite are (issue 21)
    (["shortcuts", "--depth", "60002"], "argument --depth: expected an integer <= 1202"),
    (["degradation", "--depths", "20", "60002"], "argument --depths: expected an integer <= 1202"),
    (["separable", "--alpha", "1e4"], "cannot fit in this machine's memory"),
    (["separable", "--alpha", "nan"], "argument --alpha: expected a finite number"),
    (["batchnorm", "--lr-multipliers", "1e300"], "argument --lr-multipliers: expected a "
                                                 "number > 0 and <= 100. Received: 1e300"),
    (["batchnorm", "--lr", "10", "--lr-multipliers", "20"],
     "argument --lr-multipliers: 20 x the learning rate 10 is 200, above 100"),
    (["batchnorm", "--image-size", "100000"], "--image-size 100000 cannot fit"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, text):
    err = refused(command.main, argv, prog=common.PROG, capsys=capsys, out=tmp_path / "never")
    assert text in err, err


def test_unknown_experiment_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["overfitting"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- honesty


def _config(**changes):
    config = {"hyperparameters": {"optimizer": "sgd", "momentum": 0.9, "rho": 0.9,
                                  "epsilon": 1e-7, "schedule": "steps",
                                  "boundaries": [0.5, 0.75], "decay_factor": 0.1,
                                  "epoch_decay": 0.98, "patience": 5, "weight_decay": 1e-4,
                                  "depthwise_weight_decay": 1e-4, "warmup_depth": None,
                                  "warmup_factor": 0.1, "warmup_fraction": 0.0},
              "lr": 0.1, "epochs": 10, "steps_per_epoch": 20, "global_batch": 128,
              "num_train": 1280, "augment": "none", "recipe": "resnet_cifar", "seed": 3,
              "strategy": "OneDeviceStrategy"}
    config.update(changes)
    return config


def test_training_text_follows_the_settings_used():
    text = common.describe_training(_config())
    assert text.startswith("200 steps of 128 images (20.0 epochs), SGD momentum 0.9, "
                           "learning rate 0.1 multiplied by 0.1 at 50% and 75% of the steps, "
                           "weight decay 0.0001, augmentation 'none'")
    assert "seed 3" in text
    rms = _config(augment="mobilenet", lr=0.045, recipe="mobilenet")
    rms["hyperparameters"].update(optimizer="rmsprop", schedule="exponential", epsilon=1.0,
                                  depthwise_weight_decay=0.0)
    text = common.describe_training(rms)
    assert "RMSprop (rho 0.9, momentum 0.9, epsilon 1)" in text
    assert "learning rate 0.045 multiplied by 0.98 after every epoch" in text
    assert "(0 on depthwise kernels)" in text and "augmentation 'mobilenet'" in text
    # Runs trained alike share one line; a run trained otherwise gets its own.
    assert len(common.training_lines([("a", _config()), ("b", _config())])) == 1
    assert len(common.training_lines([("a", _config()), ("b", _config(lr=0.5))])) == 2


def _curve(key, val_error, loss=None):
    n = len(val_error)
    return common.Curve(key, key, 0.01, steps=[10 * (i + 1) for i in range(n)],
                        train_error=list(val_error), val_error=list(val_error),
                        loss=loss or [1.0] * n, config=_config())


def test_failed_runs_are_named():
    assert common.run_failure(_curve("ok", [0.5, 0.1]), 10) is None
    diverged = common.run_failure(_curve("d", [0.5, 0.9], [1.0, float("nan")]), 10)
    assert diverged.startswith("diverged") and "step 20" in diverged
    collapsed = common.run_failure(_curve("c", [0.3, 0.9053]), 10)
    assert collapsed.startswith("collapsed") and "70.00%" in collapsed and "9.47%" in collapsed
    assert common.run_failure(_curve("n", [0.88, 0.89]), 10).startswith("never learned")


def test_curves_the_multipliers_grid_and_training_judge_chance_by_one_margin(monkeypatch):
    """tfresnet.utils.stats.CHANCE_MARGIN is the one margin of "at chance": moving it moves
    the experiments' verdicts and training's collapse warning alike."""
    from tfresnet.training import fitting
    from tfresnet.utils import stats
    # 10 classes: chance is 10%. At the default 5-point margin 35% learned; at a 30-point
    # margin both experiments call it a run that never learned, and training a collapse.
    point = {"alpha": 0.25, "res": 32, "macs": 1e6, "params": 1000, "accuracy_float32": 0.35,
             "accuracy_int8": 0.35, "float32_ms": 1.0, "int8_ms": 1.0}
    settings = types.SimpleNamespace(runs=5)

    def verdicts():
        summary = multipliers.multipliers_summary(_settings(), _split(), [point], settings,
                                                  [("a", _config())])
        run = types.SimpleNamespace(  # a training run at 35%, the majority share 10%
            history={"loss": [2.0, 1.9]}, labels=list("0123456789"), val_accuracy=0.35,
            best_val_accuracy=0.35, data=types.SimpleNamespace(
                val_labels=lambda: np.arange(100) % 10))
        return (common.run_failure(_curve("n", [0.6, 0.65]), 10), "FAILED" in summary,
                [w.split(":")[0] for w in fitting.health_warnings(run)])

    assert verdicts() == (None, False, [])
    monkeypatch.setattr(stats, "CHANCE_MARGIN", 0.3)
    failure, failed, warned = verdicts()
    assert failure.startswith("never learned") and failed and warned == ["collapsed"]


def _split():
    import types
    return types.SimpleNamespace(name="digits", num_train=1280, num_val=300,
                                 labels=[str(i) for i in range(10)])


def _settings(quick=False):
    return common.Settings(name="batchnorm", dataset="digits", data_dir=None,
                           manual_dir=None, image_size=8, steps=30, log_every=10,
                           batch_size=128, lr=0.01, augment="none", seed=0, quick=quick,
                           out="unused")


def test_batchnorm_summary_never_calls_an_effect_shown_when_a_run_failed():
    """The issue's case: the no-BN run diverged to 9.47%; the target must not fall to
    the failed run's level, and no effect may be called shown."""
    curves = [_curve("nobn", [0.5, 0.7, 0.9053], [2.0, float("inf"), float("nan")]),
              _curve("bn", [0.3, 0.1, 0.05]), _curve("bn_x5", [0.2, 0.08, 0.04])]
    target, rule = batchnorm.resolve_target("common", curves, 10)
    assert target == pytest.approx(0.95)  # the healthy runs' common accuracy, not 23%
    summary = batchnorm.batchnorm_summary(_settings(), _split(), curves, target, rule,
                                          "plain20", (5.0,))
    assert "nobn FAILED: it diverged" in summary
    assert "No conclusion" in summary and "as the paper reports" not in summary
    assert "were enough to show the effect" not in summary
    healthy = [_curve("nobn", [0.5, 0.2, 0.06]), _curve("bn", [0.3, 0.05, 0.04]),
               _curve("bn_x5", [0.05, 0.04, 0.03])]
    target, rule = batchnorm.resolve_target("common", healthy, 10)
    summary = batchnorm.batchnorm_summary(_settings(), _split(), healthy, target, rule,
                                          "plain20", (5.0,))
    assert "FAILED" not in summary and "as the paper reports" in summary
    assert "were enough to show the effect" in summary
    quick = batchnorm.batchnorm_summary(_settings(quick=True), _split(), healthy, target,
                                        rule, "plain20", (5.0,))
    assert "as the paper reports" not in quick and "none is drawn" in quick



# ----------------------------------------------------------------------------- gradients


def test_gradient_norms_of_plain_nets_without_bn_fall_with_depth():
    """At initialization without BN, the deeper plain net's kernel gradients are far
    smaller (on 8x8 digits the zero-padded 2x2 maps shrink the signal layer by layer);
    with shortcuts and BN they stay of one size. Norms leave the weights unchanged."""
    split = data.load("digits", image_size=8, seed=0)
    batches = gradients.probe_batches(split, 32, seed=0, count=1)
    medians = {}
    for depth in (8, 20):
        keras.utils.set_random_seed(0)
        plain = tfresnet.resnet_cifar(depth, plain=True, input_shape=(8, 8, 3))
        nobn = common.without_batchnorm(plain)
        before = [w.copy() for w in plain.get_weights()]
        norms = gradients.gradient_norms(plain, batches)
        assert all(np.array_equal(a, b) for a, b in zip(before, plain.get_weights()))
        assert len(norms) == depth - 1  # every 3x3 conv, the classifier excluded
        medians[depth] = (np.median(gradients.gradient_norms(nobn, batches)),
                          np.median(norms))
    (nobn8, bn8), (nobn20, bn20) = medians[8], medians[20]
    assert nobn20 < nobn8 / 5, medians
    assert 0.2 < bn20 / bn8 < 5, medians
    assert gradients.verdict([1e-5] * 6) == "vanishing"
    assert gradients.verdict([100, 100, 1, 1, 1, 1]) == "exploding toward the input"
    assert gradients.verdict([1, 2, 1, 2]) == "healthy"


def test_gradients_end_to_end(tmp_path):
    out = tmp_path / "gradients"
    command.main(["gradients", "--quick", "--depth", "8", "--out", str(out)])
    _, rows = read_csv(out / "grad_norms.csv")
    keys = ["plain8_nobn", "plain8", "resnet8"]
    assert sorted({(r["model"], r["when"]) for r in rows}) == \
        sorted((k, w) for k in keys for w in ("init", "trained"))
    assert len(rows) == 3 * 2 * 7
    check_png(out / "gradients.png")
    summary = (out / "summary.md").read_text()
    for key in keys:
        for when in ("init", "trained"):
            norms = [float(r["grad_norm"]) for r in rows
                     if (r["model"], r["when"]) == (key, when)]
            row = [c for c in _rows(summary, key) if c[1] == when][0]
            assert float(row[2]) == pytest.approx(np.median(norms), rel=1e-2)
            assert row[4] == gradients.verdict(norms)
    assert "none is drawn" in summary and "As the papers say" not in summary


def _rows(summary, key):
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in summary.splitlines()
            if line.startswith("|") and line.strip("| ").split(" ")[0] == key]


# ----------------------------------------------------------------------------- responses


def test_response_std_matches_a_hand_computation():
    keras.utils.set_random_seed(1)
    model = tfresnet.resnet_cifar(8, input_shape=(8, 8, 3))
    images = np.random.default_rng(0).uniform(-1, 1, (20, 8, 8, 3)).astype("float32")
    layers = common.response_layers(model)
    assert [layer.name for layer in layers] == ["conv1_bn"] + [
        f"conv{s}_block1_{i}_bn" for s in (2, 3, 4) for i in (1, 2)]
    stds = responses.response_stds(model, images, batch_size=7)  # 3 uneven batches
    for layer, value in zip(layers, stds):
        out = keras.Model(model.inputs, layer.output)(images, training=False).numpy()
        assert value == pytest.approx(float(np.std(out.astype("float64"))), rel=1e-5)


def test_responses_verdicts_follow_the_medians():
    curves = [_curve(k, [0.5, 0.05]) for k in ("plain8", "plain14", "resnet8", "resnet14")]
    stds = {"plain8": [1.0, 1.2, 0.9], "plain14": [1.1, 1.0, 1.3],
            "resnet8": [0.5, 0.6, 0.7], "resnet14": [0.3, 0.4, 0.2]}
    s = dataclasses.replace(_settings(), name="responses")
    summary = responses.responses_summary(s, _split(), curves, stds, (8, 14))
    assert "Depth 8: ResNet median std 0.600 vs plain 1.000 (1.67x): ResNet's responses " \
           "are smaller" in summary
    assert "ResNet-14 median std 0.300 vs ResNet-8 0.600: the deeper" in summary
    assert "were enough to show the effect" in summary
    stds["resnet14"] = [0.7, 0.8, 0.9]
    summary = responses.responses_summary(s, _split(), curves, stds, (8, 14))
    assert "ResNet-14 median std 0.800 vs ResNet-8 0.600: NOT smaller" in summary
    assert "the effect did not appear" in summary


# ----------------------------------------------------------------------------- shortcuts


def test_shortcuts_summary_calls_close_only_within_the_tolerance():
    profiles = {k: tfresnet.profile(tfresnet.resnet_cifar(8, shortcut=o), print_table=False)
                for k, o in (("resnet8a", "A"), ("resnet8b", "B"), ("resnet8c", "C"))}
    assert profiles["resnet8a"].trainable < profiles["resnet8b"].trainable < \
        profiles["resnet8c"].trainable
    s = dataclasses.replace(_settings(), name="shortcuts")
    close = [_curve("resnet8a", [0.5, 0.030]), _curve("resnet8b", [0.5, 0.035]),
             _curve("resnet8c", [0.5, 0.040])]
    summary = shortcuts.shortcuts_summary(s, _split(), close, profiles, 8)
    assert "span 1.00 points" in summary and "the three options are close" in summary
    far = close[:2] + [_curve("resnet8c", [0.5, 0.10])]
    summary = shortcuts.shortcuts_summary(s, _split(), far, profiles, 8)
    assert "span 7.00 points" in summary and "NOT close" in summary


# ----------------------------------------------------------------------------- separable


def test_separable_networks_cost_what_the_paper_says_in_proportion():
    costs = {key: tfresnet.profile(tfresnet.mobilenet_v1(res=32, classes=10, **kw),
                                   print_table=False)
             for key, _, kw in separable.networks(0.5)}
    # Table 4 at 224: 8.6x the MACs and 7x the parameters; at 32 the 1x1 final maps and
    # the 10-way classifier shift the ratios a little.
    assert 7 < costs["conv"].macs / costs["mobilenet"].macs < 9.5
    assert 6 < costs["conv"].trainable / costs["mobilenet"].trainable < 10
    # Table 5: thinner and shallower cost about the same, both less than the full width.
    assert 0.8 < costs["thinner"].macs / costs["shallow"].macs < 1.25
    assert costs["shallow"].macs < costs["mobilenet"].macs
    assert separable.paper_figures("conv") == (71.7, 4866, 29.3)
    assert separable.paper_figures("shallow") == (65.3, 307, 2.9)


def test_each_description_names_the_defaults_the_experiment_runs_with(monkeypatch):
    from experiments import defaults as experiment_defaults
    rated = {}
    for name, d in experiment_defaults.DEFAULTS.items():  # figures no experiment uses
        rated[name] = "lr" in d  # multipliers: the recipe's rate
        monkeypatch.setitem(experiment_defaults.DEFAULTS, name, {
            **d, "batch_size": 77, **({"lr": 0.0123} if rated[name] else {})})
    monkeypatch.setattr(experiment_defaults, "GRADIENTS_DEPTH", 44)
    monkeypatch.setattr(experiment_defaults, "SEPARABLE_ALPHA", 0.75)
    choices = command.build_parser()._subparsers._group_actions[0].choices
    for name, parser in choices.items():
        text = " ".join(parser.description.split())
        assert (", batch 77, lr 0.0123" if rated[name] else ", batch 77.") in text, name
        assert "128" not in text, name
    assert "Defaults: depth 44," in choices["gradients"].description
    assert "alpha 0.75, 32x32" in choices["separable"].description
    assert choices["gradients"].parse_args([]).depth == 44
    assert choices["separable"].parse_args([]).alpha == 0.75


def test_the_multipliers_grid_defaults_are_the_ones_its_help_names(monkeypatch):
    from experiments import defaults as experiment_defaults
    monkeypatch.setitem(experiment_defaults.LATENCY_RUNS, "quick", 7)
    choices = command.build_parser()._subparsers._group_actions[0].choices
    text = " ".join(choices["multipliers"].format_help().split())
    assert "timed runs per latency (default 50; --quick: 7)" in text
    assert "--quick: 0.5 0.25" in text and "(default: 64 for digits" in text
    args = types.SimpleNamespace(alphas=None, resolutions=None, quick=True,
                                 latency_runs=None, fresh=False)
    assert multipliers.experiment_args(args, _settings(quick=True)) == {
        "alphas": (0.5, 0.25), "resolutions": (32,), "fresh": False, "latency_runs": 7}


def test_the_multipliers_claim_reads_its_alphas_and_figures_from_their_owners(monkeypatch):
    """The summary's paper line: the registry's alphas and resolutions, the published
    top-1 and MACs; another grid in the registry changes it."""
    assert multipliers.PAPER.endswith(
        "alpha (1.0 to 0.25) or the resolution (224 to 128) trades accuracy smoothly for "
        "multiply-adds (ImageNet top-1 70.6% at 569M MACs down to 50.6% at 41M for alpha "
        "0.25)")
    monkeypatch.setattr(multipliers, "ALPHAS", (0.75, 0.5))
    assert ("alpha (0.75 to 0.5) or the resolution (224 to 128) trades accuracy smoothly for "
            "multiply-adds (ImageNet top-1 68.4% at 325M MACs down to 63.7% at 149M for "
            "alpha 0.5)") in multipliers.paper_claim()

"""tfresnet.profile: per-layer parameters and multiply-adds, and its command line.

The small models here have figures worked out by hand from the papers' rule
(H_out * W_out * C_in/groups * C_out * K_h * K_w per conv; see shared/REFERENCE.md).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import subprocess
import sys

import keras
import pytest

import tfresnet
from helpers import reference
from tfresnet.models import published
from tfresnet.models.profiling import format_count, profile
from tfresnet.utils import cli

# The module (tfresnet/__init__.py also has a function `profile`).
profile_lib = importlib.import_module("tfresnet.models.profiling")
profile_command = importlib.import_module("tfresnet.models.profile_command")

PROG = [sys.executable, "-m", "tfresnet.profile"]
# What TensorFlow's C++ runtime prints on start-up whatever TF_CPP_MIN_LOG_LEVEL says.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} \d\d:\d\d:\d\d)")


def _every_kind_of_layer():
    """Input 8x8x4; MACs and params below are worked out by hand."""
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", groups=2, name="grouped")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                     use_bias=False, name="depthwise")(x)
    x = keras.layers.SeparableConv2D(8, 3, padding="same", use_bias=False, name="separable")(x)
    x = keras.layers.Conv2DTranspose(5, 2, strides=2, use_bias=False, name="transposed")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="dense")(x)
    return keras.Model(inputs, outputs, name="kinds")


# name: (output shape, trainable, non-trainable, MACs)
EXPECTED = {
    "grouped": ((8, 8, 6), 3 * 3 * 2 * 6 + 6, 0, 8 * 8 * 2 * 6 * 3 * 3),          # 6,912
    "bn": ((8, 8, 6), 12, 12, 0),
    "relu": ((8, 8, 6), 0, 0, 0),
    "depthwise": ((4, 4, 12), 3 * 3 * 6 * 2, 0, 4 * 4 * 6 * 2 * 3 * 3),           # 1,728
    "separable": ((4, 4, 8), 3 * 3 * 12 + 12 * 8, 0, 4 * 4 * (3 * 3 * 12 + 12 * 8)),  # 3,264
    "transposed": ((8, 8, 5), 2 * 2 * 8 * 5, 0, 4 * 4 * 8 * 2 * 2 * 5),           # 2,560
    "pool": ((5,), 0, 0, 0),
    "dense": ((3,), 5 * 3 + 3, 0, 5 * 3),
}


def test_every_kind_of_layer():
    result = profile(_every_kind_of_layer(), print_table=False)
    got = {r.name: (r.output_shape, r.trainable, r.non_trainable, r.macs) for r in result.rows}
    assert got == EXPECTED
    assert result.macs == 6_912 + 1_728 + 3_264 + 2_560 + 15 == 14_479
    assert (result.trainable, result.non_trainable) == (616, 12)
    assert result.params == 628 == _every_kind_of_layer().count_params()
    assert [r.type for r in result.rows][:3] == ["Conv2D", "BatchNormalization", "ReLU"]


def test_dense_on_a_sequence_counts_every_position():
    inputs = keras.Input((5, 7))
    model = keras.Model(inputs, keras.layers.Dense(4, use_bias=False)(inputs))
    assert profile(model, print_table=False).macs == 5 * 7 * 4


def test_a_shared_layer_counts_each_call_and_its_params_once():
    shared = keras.layers.Dense(4, name="shared")
    a, b = keras.Input((6,)), keras.Input((6,))
    model = keras.Model([a, b], keras.layers.Add()([shared(a), shared(b)]))
    result = profile(model, print_table=False)
    row = next(r for r in result.rows if r.name == "shared")
    assert (row.macs, row.params) == (2 * 6 * 4, 6 * 4 + 4)
    assert result.params == model.count_params()


def test_nested_keras_applications_model():
    backbone = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3),
                                            include_top=False, pooling="avg", weights=None)
    inputs = keras.Input((128, 128, 3))
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(backbone(inputs)))
    result = profile(model, print_table=False)
    names = [r.name for r in result.rows]
    assert names[0] == f"{backbone.name}/conv1" and names[-1] == "head"
    ours = profile(tfresnet.mobilenet_v1(alpha=0.25, res=128, include_top=False,
                                         pooling="avg"), print_table=False)
    assert result.macs == ours.macs + 256 * 10
    assert result.params == model.count_params() == ours.params + 256 * 10 + 10
    assert result.non_trainable == reference.MOBILENET_PARAMS[0.25][1]

    twice = keras.Model(inputs, keras.layers.Add()([backbone(inputs), backbone(inputs)]))
    assert profile(twice, print_table=False).macs == 2 * ours.macs


def test_keras_applications_mobilenet_counts_the_published_grid():
    """REFERENCE.md: the grid's cells follow from the same count on keras.applications."""
    model = keras.applications.MobileNet(alpha=0.75, input_shape=(160, 160, 3), weights=None)
    result = profile(model, print_table=False)
    published_macs = reference.MOBILENET_MMACS[0.75][160] * 1e6
    assert abs(result.macs / published_macs - 1) <= reference.MACS_TOLERANCE
    assert result.params == reference.KERAS_APPLICATIONS_TOTALS[("MobileNet", 0.75)]


def test_unknown_input_size_is_refused():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="c")(inputs))
    with pytest.raises(ValueError, match="'c'.*not fixed.*Received: shape=\\(None, None"):
        profile(model, print_table=False)


def test_subclassed_model_is_refused():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        profile(Subclassed(), print_table=False)
    with pytest.raises(ValueError,
                       match=r"needs a Keras 3 model \(keras.Model\). Received: model=<"):
        profile(keras.layers.Dense(3))


def test_table_markdown_dict_and_printing():
    model = _every_kind_of_layer()
    out = io.StringIO()
    result = profile(model, file=out)
    printed = out.getvalue()
    assert printed.strip() == result.table() == str(result)
    lines = printed.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "MACs"]
    assert lines[2].split()[:3] == ["grouped", "Conv2D", "(8,"]
    assert lines[-2].split() == ["total", "628", "14,479"]
    assert lines[-1] == ("kinds: 628 params (616 trainable + 12 non-trainable), "
                         "14.5K MACs")
    markdown = result.to_markdown().splitlines()
    assert len(markdown) == len(result.rows) + 3
    assert markdown[2] == "| grouped | Conv2D | (8, 8, 6) | 114 | 6,912 |"
    assert markdown[-1] == "| **total** | | | **628** | **14,479** |"
    data = json.loads(json.dumps(result.to_dict()))
    assert (data["params"], data["trainable"], data["macs"]) == (628, 616, 14_479)
    assert data["layers"][0] == {"name": "grouped", "type": "Conv2D", "output_shape": [8, 8, 6],
                                 "params": 114, "macs": 6_912, "trainable": 114,
                                 "non_trainable": 0}


@pytest.mark.parametrize("n,text,exact", [
    (4_253_864, "4.25M", False), (3_857_973_248, "3.86G", False), (11_282_415_616, "11.3G", False),
    (166_396_800, "166.4M", False), (1_376, "1.38K", False), (999, "999", False),
    (166e6, "166M", True), (3.8e9, "3.8G", True), (11.3e9, "11.3G", True),
])
def test_format_count(n, text, exact):
    assert format_count(n, exact=exact) == text


@pytest.mark.parametrize("fig", reference.FIGURES, ids=lambda f: f.id)
def test_the_cli_shows_the_reference_figures(fig):
    """The figures the CLI prints beside the measured ones (tfresnet.models.published) are
    REFERENCE.md's."""
    shown = published.lookup(fig.model, alpha=fig.kwargs.get("alpha"),
                             side=fig.kwargs.get("res"))
    assert (shown.trainable, shown.non_trainable, shown.macs) == (
        fig.trainable, fig.non_trainable, fig.macs)


# --- command line ------------------------------------------------------------------------

def _run_cli(*args):
    return subprocess.Popen([*PROG, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _messages(stderr):
    return [line for line in stderr.splitlines() if not TF_NOISE.match(line)]


def test_cli_prints_table_and_totals_beside_the_reference():
    """The real command (its refusals: tests/cli/test_bad_input.py)."""
    proc = _run_cli("mobilenet_v1", "--alpha", "0.75", "--res", "160")
    out, err = proc.communicate(timeout=600)
    code = proc.returncode
    assert code == 0, err
    assert _messages(err) == []
    assert re.search(r"^conv_pw_13 +Conv2D +\(5, 5, 768\)", out, re.M)
    trainable, non_trainable = reference.MOBILENET_PARAMS[0.75]
    assert f"{trainable:,} trainable + {non_trainable:,} non-trainable" in out
    macs = int(re.search(r"^MACs: +\S+ \(([\d,]+)\); published 166M \(\+", out, re.M)
               .group(1).replace(",", ""))
    published_macs = reference.MOBILENET_MMACS[0.75][160] * 1e6
    assert abs(macs / published_macs - 1) <= reference.MACS_TOLERANCE


def test_cli_quiet_json(tmp_path, capsys):
    path = tmp_path / "resnet20.json"
    assert profile_command.main(["resnet20", "--quiet", "--json", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "resnet20 (resnet20), input (32, 32, 3)"
    assert out[1].startswith("params: 271.1K (271,098 = 269,722 trainable + 1,376 "
                             "non-trainable); published 269,722 + 1,376 (+0.00%")
    assert out[2].startswith("MACs:   40.6M (40,551,040)") and len(out) == 3
    data = json.loads(path.read_text())
    assert (data["trainable"], data["non_trainable"]) == (269_722, 1_376)
    assert data["published"]["trainable"] == 269_722 and data["registry_name"] == "resnet20"
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]


def test_cli_input_size_and_classes(capsys):
    assert profile_command.main(["resnet20", "--input-size", "16", "--classes", "5",
                             "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "resnet20 (resnet20), input (16, 16, 3)"
    assert "published" not in out[1] and "published" not in out[2]
    # A quarter of the positions of 32x32 for every conv; the classifier is 64x5.
    assert out[2] == f"MACs:   10.1M ({(40_551_040 - 64 * 10) // 4 + 64 * 5:,})"


@pytest.mark.parametrize("argv,message", [
    (["mobilenet_v1", "--alpha", "0"], "alpha must be a number >= 1/32 (the first layer "
     "keeps a channel); the paper uses 1.0, 0.75, 0.5, 0.25. Received: alpha=0.0"),
    (["resnet5"], "Unknown model 'resnet5': did you mean 'resnet56' or 'resnet50'"),
    (["mobilenet_v1", "--res", "100"], "Received: res=100"),
    (["mobilenet_v1", "--alpha", "-1"], "Received: alpha=-1.0"),
    (["mobilenet_v1", "--alpha", "x"], "argument --alpha: expected a number. Received: 'x'"),
    (["resnet20", "--alpha", "0.5"], "--alpha applies only to mobilenet_v1, "
                                     "mobilenet_v1_conv, mobilenet_v1_shallow, not resnet20"),
    (["resnet50", "--input-size", "31"], "Received: input_shape=(31, 31, 3)"),
    (["alexnet", "--classes", "0"], "Received: classes=0"),
    (["resnet20", "--json", "/nonexistent-folder/x.json"], "Received: --json"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.run(profile_command.main, argv, prog="python -m tfresnet.profile")
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m tfresnet.profile: error: ")
    assert message in lines[0]


def test_cli_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        profile_command.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in ("NAME", "--alpha A", "--res R", "--input-size S", "--classes N",
                 "--json PATH", "--quiet"):
        assert re.search(rf"^  {re.escape(flag)}\s+\S", text, re.M), flag


def test_package_profile_is_the_function():
    from tfresnet import profile
    assert profile is tfresnet.profile is profile_lib.profile

"""``export.tflite.export`` from Python, without the parser: a model from
``tfresnet.train.fit`` exported with overrides, its result's figures equal to the
results JSON's; bad settings refused by name before anything is trained or written."""

import json
import os

import pytest

from export.job import command
from export.job.config import ExportConfig
from export.job.evaluate import Variant, agreeing
from export.job.gates import agreement_check
from export.tflite import ExportResult, export
from tfresnet import train
from tfresnet.training.config import FitConfig
from tfresnet.utils import fileio

# CIFAR ResNet-20 at 16x16 on the bundled digits (as tests/export_job/test_export.py's
# resnet_run): one replica, small batches, a small calibration sample.
FAST = dict(qat_epochs=1, batch_size=8, strategy="default", calibration=64, verbose=0)


@pytest.fixture(scope="module")
def fitted():
    return train.fit("resnet20", dataset="digits", epochs=2, batch_size=8, lr=0.1,
                     augment="none", image_size=16, strategy="default", verbose=0)


@pytest.fixture(scope="module")
def exported(fitted, tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    return out, export(fitted.model, out=out, **FAST)


def test_the_result_is_what_the_results_json_says(exported):
    out, result = exported
    assert isinstance(result, ExportResult)
    assert result.results_path == os.path.join(out, "resnet20_16_results.json")
    with open(result.results_path) as f:
        saved = json.load(f)
    assert saved == json.loads(fileio.to_json(result.to_json()))
    rows = {row["kind"]: row for row in saved["rows"]}
    assert result.float_accuracy == rows["float32_keras"]["accuracy"] > 0.3
    assert result.qat_accuracy == rows["qat_keras"]["accuracy"]
    shipped = next(row for row in saved["rows"] if row["ship"])
    assert result.int8_accuracy == shipped["accuracy"]
    assert result.shipped_file == shipped["file"] == saved["shipped_file"] == \
        "resnet20_16_int8.tflite"
    assert result.agreement == saved[f"agreement_int8_vs_{result.agreement_with}"]
    assert result.agreement_test["agreeing"] == round(result.agreement * result.held_out_images)
    assert result.held_out_images == saved["held_out_images"] > 100
    assert list(result.warnings) == saved["warnings"]
    assert sorted(os.listdir(out)) == list(result.files)
    with open(os.path.join(out, "models.json")) as f:
        manifest = json.load(f)
    entry = next(m for m in manifest["models"] if m["file"] == result.shipped_file)
    assert entry == json.loads(fileio.to_json(result.manifest_entry))
    assert entry["accuracy"] == result.int8_accuracy


def test_the_settings_and_the_call_are_recorded(exported):
    _, result = exported
    saved = result.to_json()
    assert (saved["model"], saved["res"], saved["qat_epochs"], saved["seed"]) == (
        "resnet20", 16, 1, 0)
    assert saved["checkpoint"] is None and saved["float_epochs"] is None
    assert saved["command"].startswith("export.tflite.export(model, model='resnet20', ")
    assert str(exported[0]) not in saved["command"]  # paths by their base names


def test_unknown_or_bad_settings_are_refused_by_name(fitted, tmp_path):
    out = tmp_path / "assets"
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'qat_epoch': did you "
                                        r"mean 'qat_epochs'\?.* Received: qat_epoch=1$"):
        export(fitted.model, out=out, qat_epoch=1)
    with pytest.raises(ValueError, match=r"^alpha must be a number > 0\. Received: alpha=0$"):
        export(fitted.model, out=out, alpha=0)
    with pytest.raises(ValueError, match=r"^epochs trains a float model.*Received: epochs=3$"):
        export(fitted.model, out=out, epochs=3)
    with pytest.raises(ValueError, match=r"^res must be a multiple of 32 .*Received: res=48$"):
        export(None, model="mobilenet_v1", res=48, out=out)
    assert not out.exists()


def test_float_layers_are_checked_before_training(tmp_path):
    """An unknown --float-layers name was refused only after float and QAT training."""
    out = tmp_path / "assets"
    with pytest.raises(ValueError, match=r"^float_layers: 'conv9' is not a quantized conv"):
        export(None, model="resnet20", res=16, epochs=50, float_layers=["conv9"], out=out)
    with pytest.raises(ValueError, match=r"'conv1_conv' reads the model's input"):
        export(None, model="resnet20", res=16, float_layers=["conv1_conv"], out=out)
    assert not out.exists()


def test_the_command_line_s_defaults_are_the_config_s():
    assert command.config_of(command.parse([])) == ExportConfig()
    assert command.config_of(command.parse(["--qat-epochs", "2", "--weights", "imagenet"])) == \
        ExportConfig.create(qat_epochs=2, weights="imagenet")


def test_config_is_checked_once_and_takes_overrides():
    config = ExportConfig.create(qat_epochs=2, weights="imagenet", float_layers=["a"])
    assert (config.qat_epochs, config.transfer.weights, config.float_layers) == (
        2, "imagenet", ("a",))
    assert ExportConfig.create(config, qat_epochs=3).transfer.weights == "imagenet"
    with pytest.raises(ValueError, match="Received: qat_lr=0.1, qat_epochs=0"):
        ExportConfig.create(qat_lr=0.1, qat_epochs=0)


@pytest.mark.parametrize("create", [ExportConfig.create, FitConfig.create],
                         ids=["ExportConfig", "FitConfig"])
def test_an_unknown_setting_is_the_same_type_error_in_export_and_fit(create):
    """As Python refuses an unexpected keyword; a bad value stays a ValueError."""
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'qat_epoch'"):
        create(qat_epoch=1)
    with pytest.raises(TypeError, match=r"^config must be an? (Export|Fit)Config"):
        create(object())
    with pytest.raises(ValueError, match=r"Received: epochs=-1"):
        create(epochs=-1)


def test_no_held_out_image_is_an_agreement_of_none_not_a_crash():
    """The agreeing count is counted, not rebuilt from a NaN share."""
    assert agreeing(Variant("int8"), Variant("qat_keras")) == 0
    assert agreement_check(0, 0, 0.99)["images"] == 0

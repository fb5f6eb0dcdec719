"""tfresnet.training.config: FitConfig owns every setting of ``train.fit`` and its default.

A run's config.json records FitConfig's settings; an unknown override is refused by
name; the CLI's flags land on the fields of the same name; a transfer run's phases are
the user's config with ``dataclasses.replace``.
"""

import dataclasses
import inspect
import json
import os

import pytest

from tfresnet import train
from tfresnet.models import registry
from tfresnet.training import api, command, transfer, transfer_fit
from tfresnet.training.config import (
    FIT_SETTINGS,
    RUN_SETTINGS,
    TRANSFER_SETTINGS,
    UNRECORDED,
    FitConfig,
    TransferConfig,
)


def test_fit_has_no_defaults_of_its_own():
    """fit's signature holds no setting: every default is FitConfig's."""
    params = inspect.signature(api.fit).parameters
    assert list(params) == ["model", "config", "overrides"]
    assert params["config"].default is None


def test_every_setting_is_recorded_or_said_not_to_be():
    """Each field is in config.json (a plain run's top level, a transfer run's top level
    or its "fit"), shows in what it makes, or is named as not recorded."""
    names = {f.name for f in dataclasses.fields(FitConfig)}
    shown_elsewhere = {"batch_size", "weight_decay", "momentum", "recipe_overrides",
                       "deterministic", "cache_features", "precise_bn"}  # global_batch, hyperparameters...
    assert set(RUN_SETTINGS) | shown_elsewhere | set(UNRECORDED) == names
    assert set(TRANSFER_SETTINGS) | set(FIT_SETTINGS) | set(UNRECORDED) | {"recipe"} == names


@pytest.mark.parametrize("name", ["epoch", "batchsize", "alpha"])
def test_an_unknown_override_is_refused_by_name(name):
    with pytest.raises(TypeError) as err:
        train.fit("resnet20", **{name: 3})
    text = str(err.value)
    assert f"unexpected keyword argument {name!r}" in text
    assert "epochs, batch_size, lr" in text and "fine_tune_batchnorm" in text


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0}, "epochs must be a positive integer. Received: epochs=0"),
    ({"batch_size": True}, "batch_size must be a positive integer. Received: batch_size=True"),
    ({"verbose": 3}, "verbose must be 0, 1 or 2. Received: verbose=3"),
    ({"seed": "1"}, "seed must be an integer. Received: seed='1'"),
    ({"lr": -1.0}, "lr must be a number > 0. Received: lr=-1.0"),
    ({"augment": "flip"}, "augment must be one of cifar, imagenet, mobilenet, none. "
                          "Received: augment='flip'"),
    ({"precise_bn": "no"}, "precise_bn must be True or False. Received: precise_bn='no'"),
    ({"steps_per_execution": 0},
     "steps_per_execution must be a positive integer. Received: steps_per_execution=0"),
    ({"freeze_epochs": 2}, "`freeze_epochs` applies to transfer learning: add `weights` "
                           "(imagenet, a .h5 file or a run). Received: freeze_epochs=2"),
    ({"weights": "imagenet", "epochs": 2, "freeze_epochs": 3},
     "`freeze_epochs` (3) is larger than `epochs` (2)"),
])
def test_settings_are_checked_once_with_the_one_line_messages(overrides, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(
            ")", r"\)").replace(".", r"\.")):
        FitConfig.create(**overrides)
    with pytest.raises(ValueError) as err:  # fit refuses it the same way
        train.fit("resnet20", **overrides)
    assert str(err.value).startswith(message)
    assert "--" not in str(err.value)  # the API's words; the command line says its flags


def test_overrides_replace_a_given_config():
    base = FitConfig(epochs=3, seed=7)
    config = FitConfig.create(base, batch_size=4, weights="imagenet", freeze_epochs=1)
    assert (config.epochs, config.seed, config.batch_size) == (3, 7, 4)
    assert config.transfer == TransferConfig(weights="imagenet", freeze_epochs=1)
    assert FitConfig.create(base) is base and base.batch_size is None  # frozen


def test_config_json_is_the_fit_config(tmp_path):
    """A run's config.json holds FitConfig's settings: those given as given, the others
    FitConfig's defaults (asdict of the config with the same overrides)."""
    given = dict(dataset="digits", epochs=1, steps_per_epoch=2, steps_per_execution=2,
                 batch_size=8, lr=0.05,
                 recipe="resnet_cifar", strategy="default", image_size=(16, 16),
                 model_kwargs={}, augment="none", out_dir=str(tmp_path / "run"),
                 verbose=0)
    result = train.fit("resnet20", **given)
    with open(tmp_path / "run" / "config.json") as f:
        saved = json.load(f)
    expected = dataclasses.asdict(FitConfig(**given))
    expected["image_size"] = list(expected["image_size"])
    assert {k: saved[k] for k in RUN_SETTINGS} == {k: expected[k] for k in RUN_SETTINGS}
    defaults = dataclasses.asdict(FitConfig())
    for key in ("seed", "val_fraction", "mixed_precision", "jit_compile", "sync_batchnorm"):
        assert saved[key] == defaults[key], key
    assert saved["batch_size_per_replica"] == given["batch_size"]
    assert set(result.config) == set(saved)  # what fit returns is what it wrote


def test_the_validation_share_and_the_strategy_have_one_default():
    """FitConfig, tfresnet.data.load, make_strategy and the CLI show the same defaults."""
    from tfresnet.data.sources import load
    from tfresnet.training.strategy import make_strategy
    args = command.parse([])
    assert (args.val_fraction, args.strategy) == (FitConfig().val_fraction,
                                                  FitConfig().strategy) == (0.2, "mirrored")
    assert inspect.signature(load).parameters["val_fraction"].default == 0.2
    assert inspect.signature(make_strategy).parameters["name"].default == "mirrored"


def test_the_cli_flags_land_on_the_fields_of_their_name(monkeypatch, tmp_path):
    seen = {}

    def capture(model, config):
        seen.update(model=model, config=config)
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "fit", capture)
    with pytest.raises(KeyboardInterrupt):
        command.main(["--model", "mobilenet_v1", "--alpha", "0.5", "--epochs", "3",
                      "--batch-size", "4", "--sync-bn", "--lr-factor", "0.5", "--seed",
                      "5", "--weights", "imagenet", "--freeze-epochs", "1",
                      "--fine-tune-batchnorm", "--out", str(tmp_path / "r"),
                      "--strategy", "default", "--val-fraction", "0.3"])
    config = seen["config"]
    assert seen["model"] == "mobilenet_v1"
    assert config == FitConfig.create(
        epochs=3, batch_size=4, sync_batchnorm=True, seed=5, val_fraction=0.3,
        strategy="default", out_dir=str(tmp_path / "r"), model_kwargs={"alpha": 0.5},
        recipe_overrides={"decay_factor": 0.5}, verbose=config.verbose,
        weights="imagenet", freeze_epochs=1, fine_tune_batchnorm=True)


def test_the_phases_are_the_users_config_replaced():
    """transfer_fit.phase_config keeps every setting of the user's but what a phase
    owns: the loaded data, its length and folder, the rate (the phase rule's)."""
    callbacks = (object(),)
    user = FitConfig.create(
        dataset="folder", epochs=6, batch_size=4, lr=0.3, seed=3, strategy="one",
        steps_per_epoch=5, mixed_precision=True, momentum=0.5, callbacks=callbacks,
        recipe_overrides={"patience": 2}, cache_features=False, image_size=32,
        model_kwargs={"alpha": 0.5}, verbose=0, weights="imagenet", freeze_epochs=2,
        overwrite=True)
    split = object()
    info = registry.model_info("mobilenet_v1")
    head = transfer_fit.phase_config(user, split, info, 0, 2, "/runs/r")
    tune = transfer_fit.phase_config(user, split, info, 1, 4, None)
    assert head == dataclasses.replace(
        user, dataset=split, epochs=2, out_dir=os.path.join("/runs/r", "1_head"), lr=None,
        recipe=info.recipe, image_size=None, model_kwargs=None, overwrite=False,
        augment=transfer.DEFAULT_AUGMENT, transfer=TransferConfig())
    assert tune == dataclasses.replace(head, epochs=4, out_dir=None)
    for key in ("batch_size", "seed", "strategy", "steps_per_epoch", "mixed_precision",
                "momentum", "callbacks", "recipe_overrides", "cache_features", "verbose"):
        assert getattr(head, key) == getattr(user, key), key


def test_the_cli_says_the_librarys_errors_in_its_flags():
    """One mapping (command.flag_words) from the settings' names to tfresnet.train's flags:
    after "Received:" a setting whose value the flag gave becomes ``--flag=value`` (the
    bare flag for True; sync_batchnorm's flag is --sync-bn), and a message that starts
    with its name starts with the flag; anything else is left as written."""
    args = command.parse(["--batch-size", "8", "--image-size", "3", "--sync-bn",
                          "--out", "r", "--seed", "0"])

    def words(text):
        return command.flag_words(text, args)

    assert words("the global batch (8 x 1 replicas = 8) is larger than the 5 training "
                 "images. Received: batch_size=8") == (
        "the global batch (8 x 1 replicas = 8) is larger than the 5 training images. "
        "Received: --batch-size=8")
    assert words("image_size must be at least 8. Received: image_size=3") == (
        "--image-size must be at least 8. Received: --image-size=3")
    assert words("a run is in the folder. Received: sync_batchnorm=True, out_dir='r'") == (
        "a run is in the folder. Received: --sync-bn, --out=r")
    # a setting in backticks is its flag, given or not (the summary's health warnings)
    assert words("try a smaller `batch_size`, a lower `lr`, more `epochs`, or `weights`; "
                 "pass `overwrite=True` or another `out_dir`") == (
        "try a smaller --batch-size, a lower --lr, more --epochs, or --weights; "
        "pass --overwrite or another --out")
    for kept in ("run.json: 'seed' must be an integer. Received: seed=\"abc\"",  # not the flag's
                 "the recipe's batch. Received: batch_size=128",  # no flag gave it
                 "run MobileNet(alpha=0.25, weights='imagenet'). Received: image_size=(3, 3)",
                 "a batch_sizes=3 of the epochs. Received: weights_x=1"):
        assert words(kept) == kept


def test_a_bad_value_through_the_cli_names_the_flag(capsys, tmp_path):
    """The library refuses a batch larger than the data in its words; the command's one
    line says --batch-size, exit status 2, no traceback."""
    from tfresnet.utils import cli
    with pytest.raises(SystemExit) as stop:
        cli.run(command.main, ["--batch-size", "2000", "--epochs", "1", "--strategy",
                               "default", "--out", str(tmp_path / "r")], prog=command.PROG)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{command.PROG}: error: the global batch (2000 x 1 replicas")
    assert err.strip().endswith("Received: --batch-size=2000"), err
    assert not (tmp_path / "r").exists()

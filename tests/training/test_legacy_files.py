"""Files of the earlier releases (Keras 2, tf_keras) load into Keras 3 models.

Keras 3 cannot deserialize a tf_keras ``.keras`` ("Could not locate class
'Functional'"); :mod:`tfresnet.training.checkpoint` rebuilds the registry model and loads
the file's weights. tests/fixtures/keras2_run is a run folder written by the last
tf_keras release (tests/fixtures/make_keras2_run.py), so these tests keep running once
tf_keras is gone; the tests that write more such files skip without tf_keras.
"""

import io
import os
import re
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest

from helpers.legacy_files import KERAS2_OUTPUTS, KERAS2_RUN, write_keras2_model
from tfresnet import train
from tfresnet.training import checkpoint, rundir, runschema, transfer

FIXTURE_NAME = "mobilenet_v1_0.0625_32"


@pytest.fixture
def run(tmp_path):
    """A copy of the tf_keras run folder (nothing here may change the fixture)."""
    return shutil.copytree(KERAS2_RUN, tmp_path / "keras2_run")


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _stored_weights(path):
    """{layer name: [arrays]} of the ``model.weights.h5`` inside a tf_keras ``.keras``,
    named as both Keras versions name them (class name in snake case, numbered)."""
    with zipfile.ZipFile(path) as z:
        data = z.read("model.weights.h5")
    return h5py.File(io.BytesIO(data), "r")


def _assert_weights_are_the_files(model, path):
    stored, seen = _stored_weights(path), {}
    compared = 0
    for layer in model.layers:
        key = _snake(type(layer).__name__)
        n = seen[key] = seen.get(key, -1) + 1
        group = f"layers/{key}" + (f"_{n}" if n else "") + "/vars"
        for i, weight in enumerate(layer.weights):
            np.testing.assert_array_equal(np.asarray(weight), stored[f"{group}/{i}"][()],
                                          err_msg=f"{layer.name} {i}")
            compared += 1
    assert compared == len(model.weights) > 100


def _features(model, x):
    return keras.Model(model.input, model.get_layer("avg_pool").output).predict(x, verbose=0)


def test_keras2_run_folder_loads_with_the_same_outputs(run):
    with pytest.raises(Exception, match="Could not locate class 'Functional'"):
        keras.models.load_model(os.path.join(run, "model.keras"), compile=False)
    model, config, labels = train.load_run(run)
    assert isinstance(model, keras.Model) and type(model).__module__.startswith("keras.src")
    assert model.name == FIXTURE_NAME and config["model"] == "mobilenet_v1"
    assert labels == [str(i) for i in range(10)]
    _assert_weights_are_the_files(model, os.path.join(run, "model.keras"))
    expected = np.load(KERAS2_OUTPUTS)
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"],
                               atol=1e-5)
    np.testing.assert_allclose(_features(model, expected["x"]), expected["features"],
                               atol=1e-5)


def test_keras2_file_alone_is_rebuilt_from_its_own_name(run, tmp_path):
    """No config.json beside it: the registry model comes from the file's configuration
    (its name ``mobilenet_v1_0.0625_32``, input and classifier)."""
    alone = tmp_path / "alone" / "m.keras"
    alone.parent.mkdir()
    shutil.copy(os.path.join(run, "model.keras"), alone)
    model, config, labels = train.load_run(alone)
    assert (model.name, config, labels) == (FIXTURE_NAME, {}, [])
    expected = np.load(KERAS2_OUTPUTS)
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"],
                               atol=1e-5)
    _assert_weights_are_the_files(model, alone)


def test_keras2_run_as_pretrained_weights(run):
    """``--weights RUN`` of a tf_keras run: backbone and (same labels) classifier."""
    model, note = transfer.load_weights(run, "mobilenet_v1", classes=10,
                                        labels=[str(i) for i in range(10)],
                                        model_kwargs={"alpha": 0.0625, "res": 32})
    assert "its classifier kept" in note
    _assert_weights_are_the_files(model, os.path.join(run, "model.keras"))


def test_keras2_file_of_another_model_is_one_line(run, tmp_path):
    """The run's config.json names another model than the file holds: refused in one
    line that names the file."""
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config.replace('"alpha": 0.0625', '"alpha": 0.125'))
    with pytest.raises(ValueError) as err:
        train.load_run(run)
    text = str(err.value)
    assert "\n" not in text and "model.keras" in text and "Keras 2" in text
    assert "do not fit mobilenet_v1" in text


def test_interrupted_keras2_run_is_refused_in_one_line(run):
    """Its backup/ is a TensorFlow checkpoint that Keras 3's BackupAndRestore cannot
    read: resuming would start again silently, so it is refused."""
    os.remove(run / "model.keras")
    (run / "backup" / "chief").mkdir(parents=True)
    (run / "backup" / "chief" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"')
    config = runschema.read_config(str(run))
    with pytest.raises(ValueError, match="interrupted under an earlier release .Keras 2, "
                                         "tf_keras.*`overwrite=True`"):
        rundir.plan_run_dir(str(run), config, overwrite=False)


# ----------------------------------------------------------------------------- tf_keras now

@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras2_resnet_files_load(suffix, tmp_path):
    """ResNet-20 (its ChannelPad shortcuts are this package's layer), saved by tf_keras
    with random weights as a zip .keras and as an HDF5 model."""
    pytest.importorskip("tf_keras")
    path = tmp_path / f"r20{suffix}"
    expected = write_keras2_model(path, "resnet20", side=16, input_shape=(16, 16, 3),
                                  classes=5)
    model = checkpoint.load_model(path)
    assert isinstance(model, keras.Model) and model.name == "resnet20"
    # the outputs depend on the image: by over 100 times the tolerance below
    assert np.ptp(expected["y"], axis=0).max() > 1e-3
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["y"],
                               atol=1e-5)


def test_keras2_file_of_a_model_outside_the_registry_is_one_line(tmp_path):
    pytest.importorskip("tf_keras")
    path = tmp_path / "mine.keras"
    write_keras2_model(path, "resnet20", side=16, input_shape=(16, 16, 3), classes=5,
                       name="my_net")
    with pytest.raises(ValueError) as err:
        checkpoint.load_model(path)
    text = str(err.value)
    assert "\n" not in text and "mine.keras" in text
    assert "'my_net' is not a registry model" in text

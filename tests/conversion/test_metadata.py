"""export.metadata: the metadata round-trips, the model still runs, and MediaPipe reads it.

A tiny CNN learns which colour channel dominates an image (red / green / blue) so that
every check has a known right answer; it is converted to a full-integer uint8 model and to
a float32 model. MediaPipe Tasks' ImageClassifier runs in its own cached venv
(tests/helpers/mediapipe_env.py), as an Android app would run the file.
"""

import io
import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from tensorflow.lite.python import schema_py_generated as schema

from export.metadata import add_metadata, main, read_metadata, set_signature
from helpers import mediapipe_env
from tfresnet.data import MEAN, STD
from tfresnet.utils import cli

LABELS = ["red", "green", "blue"]
SIZE = 32
INFO = dict(name="tiny_colour_cnn", description="Which colour channel dominates.",
            version="v3", author="tfresnet tests", license="Apache-2.0", labels=LABELS,
            mean=MEAN, std=STD)


def _colour_images(n, seed):
    """uint8 [n, 32, 32, 3] noise images whose channel ``label`` is brighter; labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 150, (n, SIZE, SIZE, 3))
    images[np.arange(n), :, :, labels] += rng.integers(60, 106, (n, 1, 1))
    return images.astype(np.uint8), labels


@pytest.fixture(scope="module")
def trained():
    """Learns the colour task; label smoothing keeps the scores well inside (0, 1)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    images, labels = _colour_images(600, seed=1)
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.CategoricalCrossentropy(label_smoothing=0.3))
    model.fit((images - MEAN) / STD, np.eye(3)[labels], epochs=8, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def uint8_tflite(trained):
    calibration, _ = _colour_images(64, seed=2)
    converter = tf.lite.TFLiteConverter.from_keras_model(trained)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([((image[None] - MEAN) / STD)
                                                 .astype(np.float32)] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


@pytest.fixture(scope="module")
def float_tflite(trained):
    return tf.lite.TFLiteConverter.from_keras_model(trained).convert()


@pytest.fixture(scope="module")
def test_images(tmp_path_factory):
    """Six held-out images (two per class) as arrays and as PNG files of the model's size
    (MediaPipe would resize others)."""
    images, labels = _colour_images(6, seed=3)
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"image{i}_{LABELS[labels[i]]}.png")
        Image.fromarray(image).save(paths[-1])
    return images, labels, paths


@pytest.fixture(scope="module")
def mediapipe_python():
    return mediapipe_env.python_or_skip()


def _litert(tflite, images, mean=MEAN, std=STD):
    """Probabilities from the LiteRT interpreter; float input is fed (x - mean) / std."""
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probs = []
    for image in images:
        x = image[None] if inp["dtype"] == np.uint8 else (
            (image[None].astype(np.float32) - np.float32(mean)) / np.float32(std))
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0]
        scale, zero = out["quantization"]
        probs.append((y.astype(np.float32) - zero) * scale if scale else y)
    return np.array(probs)


def _mediapipe(python, tflite, tmp_path, image_paths, name="model.tflite"):
    path = tmp_path / name
    path.write_bytes(tflite)
    return mediapipe_env.classify(python, path, image_paths)


def _scores(result):
    """MediaPipe categories -> scores in label order."""
    scores = np.zeros(len(LABELS), np.float32)
    for category in result["categories"]:
        scores[category["index"]] = category["score"]
    return scores


def _data_starts(tflite):
    """Offsets in the file of every non-empty buffer's data."""
    model = schema.Model.GetRootAs(tflite, 0)
    starts = []
    for i in range(model.BuffersLength()):
        tab = model.Buffers(i)._tab
        if model.Buffers(i).DataLength():
            starts.append(tab.Vector(tab.Offset(4)))
    return starts


def test_metadata_round_trip(uint8_tflite):
    tflite = add_metadata(uint8_tflite, image_size=(SIZE, SIZE), **INFO)
    meta = read_metadata(tflite)
    for field in ("name", "description", "version", "author", "license"):
        assert meta[field] == INFO[field]
    assert meta["min_parser_version"] == "1.0.0"
    assert meta["input"] == {
        "name": "image", "type": "uint8", "color_space": "RGB", "image_size": (SIZE, SIZE),
        "mean": [MEAN], "std": [STD], "min": [0.0], "max": [255.0],
        "description": "Input image to be classified: RGB, 32x32, normalized as "
                       "(pixel - 128) / 128."}
    assert meta["output"] == {
        "name": "probabilities", "type": "uint8", "label_file": "labels.txt",
        "label_file_type": "TENSOR_AXIS_LABELS", "min": [0.0], "max": [255.0],
        "description": "Probabilities of the 3 labels respectively."}
    assert meta["associated_files"] == {"labels.txt": b"red\ngreen\nblue\n"}
    assert meta["labels"] == LABELS

    # Laid out as MetadataPopulator does: one TFLITE_METADATA buffer, M001 flatbuffer,
    # labels.txt stored uncompressed in a zip appended after the model flatbuffer.
    model = schema.Model.GetRootAs(tflite, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(b"TFLITE_METADATA") == 1
    entry = model.Metadata(names.index(b"TFLITE_METADATA"))
    assert model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()[4:8] == b"M001"
    with zipfile.ZipFile(io.BytesIO(tflite)) as archive:
        (info,) = archive.infolist()
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.header_offset >= len(uint8_tflite)   # after the flatbuffer

    # The converter's own metadata survives; adding again replaces, byte for byte.
    assert {b"min_runtime_version", b"CONVERSION_METADATA"} <= set(names)
    assert add_metadata(tflite, **INFO) == tflite


def test_per_channel_normalization_and_float_stats(float_tflite):
    meta = read_metadata(add_metadata(float_tflite, **{**INFO, "mean": [0, 64, 128],
                                                       "std": [255, 128, 64]}))
    assert meta["input"]["type"] == "float32"
    assert meta["input"]["mean"] == [0.0, 64.0, 128.0]
    assert meta["input"]["std"] == [255.0, 128.0, 64.0]
    assert meta["input"]["min"] == [0.0, -0.5, -2.0]
    assert meta["input"]["max"] == [1.0, 191 / 128, 127 / 64]
    assert (meta["output"]["min"], meta["output"]["max"]) == ([0.0], [1.0])


@pytest.mark.parametrize("change, message", [
    ({"labels": ["red", "green"]}, "needs 3 labels"),
    ({"labels": ["red", "green", "blue\nsky"]}, "one-line"),
    ({"image_size": (SIZE, SIZE + 1)}, "must match"),
    ({"std": 0.0}, "positive"),
    ({"mean": [1.0, 2.0]}, "one number per RGB channel"),
    ({"mean": [1.0, 2.0, 3.0], "std": 2.0}, "same number"),
    ({"version": 3}, "must be a string"),
])
def test_bad_arguments(uint8_tflite, change, message):
    with pytest.raises(ValueError, match=message):
        add_metadata(uint8_tflite, **{**INFO, **change})


def test_not_a_model_or_no_metadata(uint8_tflite):
    with pytest.raises(ValueError, match="not a TFLite model"):
        add_metadata(b"PK\x03\x04 not a model", **INFO)
    with pytest.raises(ValueError, match="no TFLITE_METADATA"):
        read_metadata(uint8_tflite)


def test_set_signature_replaces_it_and_metadata_keeps_it(uint8_tflite, test_images):
    """The file's one SignatureDef becomes the given names; add_metadata keeps it."""
    signed = set_signature(uint8_tflite, key="classify", inputs=["pixels"],
                           outputs=["scores"])
    with_metadata = add_metadata(signed, **INFO)
    images = test_images[0][:1]
    plain = Interpreter(model_content=uint8_tflite)
    plain.allocate_tensors()
    plain.set_tensor(plain.get_input_details()[0]["index"], images)
    plain.invoke()
    expected = plain.get_tensor(plain.get_output_details()[0]["index"])
    for model_bytes in (signed, with_metadata):
        interpreter = Interpreter(model_content=model_bytes)
        assert interpreter.get_signature_list() == {
            "classify": {"inputs": ["pixels"], "outputs": ["scores"]}}
        # the tensors carry the signature's names: one name in every view
        assert [d["name"] for d in interpreter.get_input_details()] == ["pixels"]
        assert [d["name"] for d in interpreter.get_output_details()] == ["scores"]
        scores = interpreter.get_signature_runner("classify")(pixels=images)["scores"]
        np.testing.assert_array_equal(scores, expected)
    with pytest.raises(ValueError, match="1 inputs and 1 outputs"):
        set_signature(uint8_tflite, key="x", inputs=["a", "b"], outputs=["c"])


def test_cli_prints_metadata(uint8_tflite, tmp_path, capsys):
    path = tmp_path / "model.tflite"
    path.write_bytes(add_metadata(uint8_tflite, **INFO))
    main([str(path)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["name"] == INFO["name"] and printed["labels"] == LABELS
    assert printed["associated_files"] == {"labels.txt": "15 bytes"}

    path.write_bytes(uint8_tflite)
    for argv in ([str(path)], [str(tmp_path / "missing.tflite")]):
        with pytest.raises(SystemExit) as exit_:
            cli.run(main, argv, prog="python -m export.metadata")
        assert exit_.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_zip_bomb_appended_to_a_model_is_refused_before_it_is_unpacked(uint8_tflite,
                                                                         tmp_path, capsys):
    """labels.txt declaring 3 GiB in the zip after the model: one line with the bound."""
    from helpers.cli_refusal import refused
    from helpers.hostile_files import declare

    path = tmp_path / "model.tflite"
    path.write_bytes(add_metadata(uint8_tflite, **INFO))
    declare(path, "labels.txt", 3 * 2 ** 30)
    err = refused(main, [str(path)], prog="python -m export.metadata", capsys=capsys)
    assert "the files appended to the model declare 3.0 GiB unpacked, more than the " \
           "64.0 MiB label files may be" in err, err


@pytest.mark.parametrize("kind", ["uint8", "float32"])
def test_still_runs_in_litert(kind, uint8_tflite, float_tflite, test_images):
    plain = uint8_tflite if kind == "uint8" else float_tflite
    tflite = add_metadata(plain, **INFO)
    images, labels, _ = test_images
    before, after = _litert(plain, images), _litert(tflite, images)
    np.testing.assert_array_equal(after, before)
    assert list(after.argmax(1)) == list(labels)        # the model learned its task
    assert 0.5 < after.max(1).min() and after.max() < 0.95    # scores not saturated
    # Every buffer 16-byte aligned (schema.fbs: force_align 16), the metadata's included.
    assert len(_data_starts(tflite)) == len(_data_starts(plain)) + 1
    assert all(start % 16 == 0 for start in _data_starts(tflite))


def test_mediapipe_reads_uint8_model(mediapipe_python, uint8_tflite, test_images, tmp_path):
    images, labels, paths = test_images
    tflite = add_metadata(uint8_tflite, **INFO)
    ours = _litert(tflite, images)
    results = _mediapipe(mediapipe_python, tflite, tmp_path, paths)
    assert len(results) == len(paths)
    for result, expected in zip(results, ours):
        assert result["top1"]["index"] == expected.argmax()
        assert result["top1"]["category_name"] == LABELS[expected.argmax()]
        assert [c["category_name"] for c in result["categories"]] == [
            LABELS[c["index"]] for c in result["categories"]]
        np.testing.assert_array_equal(_scores(result), expected)   # same uint8 bytes in
    assert [r["top1"]["category_name"] for r in results] == [LABELS[i] for i in labels]


def test_mediapipe_without_metadata(mediapipe_python, uint8_tflite, float_tflite, test_images,
                                    tmp_path):
    """The label names come from the metadata, and float input needs its normalization."""
    images, labels, paths = test_images
    results = _mediapipe(mediapipe_python, uint8_tflite, tmp_path, paths)
    assert [r["top1"]["index"] for r in results] == list(_litert(uint8_tflite, images).argmax(1))
    assert {c["category_name"] for r in results for c in r["categories"]} == {""}
    with pytest.raises(RuntimeError, match="NormalizationOptions"):
        _mediapipe(mediapipe_python, float_tflite, tmp_path, paths[:1])


@pytest.mark.parametrize("mean, std", [(MEAN, STD), (64.0, 64.0)])
def test_mediapipe_applies_normalization(mediapipe_python, float_tflite, test_images, tmp_path,
                                         mean, std):
    """MediaPipe feeds a float32 model (pixel - mean) / std with the metadata's values.

    (64, 64) is not the training normalization: MediaPipe still agrees with our runner fed
    the same, which shows it takes the values from the metadata.
    """
    images, labels, paths = test_images
    tflite = add_metadata(float_tflite, **{**INFO, "mean": mean, "std": std})
    ours = _litert(tflite, images, mean=mean, std=std)
    results = _mediapipe(mediapipe_python, tflite, tmp_path, paths)
    assert len(results) == len(paths)
    for result, expected in zip(results, ours):
        assert result["top1"]["index"] == expected.argmax()
        assert result["top1"]["category_name"] == LABELS[expected.argmax()]
        np.testing.assert_allclose(_scores(result), expected, rtol=1e-4, atol=0)
    if mean == MEAN:   # the training normalization: the right answers
        assert [r["top1"]["index"] for r in results] == list(labels)
    else:              # other inputs, other outputs: MediaPipe followed the metadata
        assert not np.allclose(ours, _litert(float_tflite, images), rtol=0.5, atol=0)


def test_mediapipe_rejects_per_channel_float_normalization(mediapipe_python, float_tflite,
                                                           test_images, tmp_path):
    """Valid metadata, but MediaPipe 1.2.2 normalizes float input with one mean/std only."""
    tflite = add_metadata(float_tflite, **{**INFO, "mean": [0.0, 64.0, 128.0],
                                           "std": [255.0, 128.0, 64.0]})
    with pytest.raises(RuntimeError, match="Per-channel image normalization is not available"):
        _mediapipe(mediapipe_python, tflite, tmp_path, test_images[2][:1])

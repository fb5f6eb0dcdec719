"""tfresnet.data: the three sources, their errors, and the tf.data pipeline."""

import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from tfresnet import data
from tfresnet.utils import flags


@pytest.fixture(scope="module")
def digits32():
    return data.load("digits", image_size=32)


def _one_line_error(match, fn, *args, **kwargs):
    """Calls fn, expects a one-line ValueError matching ``match``, returns its text."""
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------ digits


def test_digits_shapes_labels_and_split(digits32):
    split = digits32
    assert split.labels == [str(d) for d in range(10)]
    assert split.image_size == (32, 32) and split.name == "digits"
    assert split.flip_ok is False
    assert split.train.element_spec == (tf.TensorSpec((32, 32, 3), tf.uint8),
                                        tf.TensorSpec((), tf.int32))
    x_train, y_train = data.as_numpy(split.train)
    x_val, y_val = data.as_numpy(split.val)
    assert (len(x_train), len(x_val)) == (split.num_train, split.num_val)
    assert split.num_train + split.num_val == 1797
    assert x_val.dtype == np.uint8 and x_val.min() == 0 and x_val.max() == 255
    assert np.array_equal(x_val[..., 0], x_val[..., 2])  # grey in all three channels
    # Stratified: each class puts round(20%) of its images in validation.
    per_class = np.bincount(load_digits().target)
    assert np.array_equal(np.bincount(y_val), np.round(per_class * 0.2).astype(int))
    assert np.array_equal(np.bincount(y_train) + np.bincount(y_val), per_class)


def test_digits_pixels_are_sklearn_scaled():
    """At 8x8 the split holds exactly sklearn's images, scaled 0..16 -> 0..255."""
    split = data.load("digits", image_size=8, val_fraction=0.5, seed=3)
    images = np.concatenate([data.as_numpy(split.train)[0], data.as_numpy(split.val)[0]])
    expected = np.round(load_digits().images * 255 / 16).astype(np.uint8)
    rows = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert rows(images[..., 1]) == rows(expected)


def test_digits_resize_keeps_the_digit(digits32):
    """Shrunk back to 8x8, each 32x32 image is nearest to a source digit of its label."""
    x_val, y_val = data.as_numpy(digits32.val, limit=50)
    source = np.round(load_digits().images * 255 / 16)
    small = tf.image.resize(x_val[..., :1].astype(np.float32), (8, 8), "area").numpy()[..., 0]
    # Every shrunk image is closest to a source image of its own label.
    labels = load_digits().target
    dist = np.abs(small[:, None] - source[None]).mean(axis=(2, 3))
    assert np.array_equal(labels[dist.argmin(axis=1)], y_val)
    # Bilinear up then area down blurs by ~15 levels on average; other digits are ~50 off.
    assert dist.min(axis=1).max() < 25 < np.median(dist)


def test_digits_split_is_seeded(digits32):
    again = data.load("digits", image_size=32)
    other = data.load("digits", image_size=32, seed=1)
    x0, y0 = data.as_numpy(digits32.val)
    x1, y1 = data.as_numpy(again.val)
    x2, _ = data.as_numpy(other.val)
    assert np.array_equal(x0, x1) and np.array_equal(y0, y1)
    assert x2.shape == x0.shape and not np.array_equal(x0, x2)


def test_bad_arguments():
    _one_line_error("image_size", data.load, "digits", image_size=0)
    _one_line_error("image_size", data.load, "digits", image_size=(32, 32, 3))
    _one_line_error("val_fraction", data.load, "digits", image_size=8, val_fraction=1.0)
    _one_line_error("seed", data.load, "digits", image_size=8, seed="x")


# ------------------------------------------------------------------ image folder

COLOURS = {"cat": [(250, 10, 10), (240, 20, 0), (255, 0, 30)],
           "dog": [(0, 10, 250), (10, 0, 240), (20, 20, 255)]}


def _write(path, colour, size=(20, 30), mode="RGB"):
    image = Image.new("RGB", size, colour)
    image.convert(mode).save(path)


@pytest.fixture
def folder(tmp_path):
    """cat/ and dog/ with 3 images each in every accepted format, plus stray files."""
    formats = ["png", "jpg", "bmp", "gif", "jpeg", "PNG"]
    for name, colours in COLOURS.items():
        os.makedirs(tmp_path / name)
        for i, colour in enumerate(colours):
            fmt = formats[(i + 3 * (name == "dog")) % len(formats)]
            _write(tmp_path / name / f"{i}.{fmt}", colour, size=(20 + 7 * i, 30))
        (tmp_path / name / "notes.txt").write_text("not an image")
    os.makedirs(tmp_path / ".hidden")
    return tmp_path


def test_folder_happy_path(folder):
    split = data.load(str(folder), image_size=(16, 12), val_fraction=0.34)
    assert split.labels == ["cat", "dog"] and split.flip_ok is True
    assert (split.num_train, split.num_val) == (4, 2)
    x_train, y_train = data.as_numpy(split.train)
    x_val, y_val = data.as_numpy(split.val)
    assert x_train.shape == (4, 16, 12, 3) and x_train.dtype == np.uint8
    assert sorted(y_val) == [0, 1] and sorted(y_train) == [0, 0, 1, 1]
    # Solid colours survive decoding and resizing (JPEG within a few levels): red is cat.
    for x, y in zip(np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])):
        mean = x.reshape(-1, 3).mean(axis=0)
        assert x.reshape(-1, 3).std(axis=0).max() < 3
        assert (mean[0] > 200 and mean[2] < 40) == (y == 0)


def test_folder_grey_image_gets_three_channels(tmp_path):
    for name, level in (("a", 40), ("b", 200)):
        os.makedirs(tmp_path / name)
        for i in range(2):
            _write(tmp_path / name / f"{i}.png", (level,) * 3, mode="L")
    split = data.load(tmp_path, image_size=8, val_fraction=0.5)
    x, y = data.as_numpy(split.train)
    assert x.shape == (2, 8, 8, 3)
    assert np.array_equal(x[y == 0], np.full((1, 8, 8, 3), 40, np.uint8))


def test_folder_errors(tmp_path):
    start = time.monotonic()
    _one_line_error("unknown dataset .*no such folder", data.load,
                    str(tmp_path / "missing"), image_size=8)
    (tmp_path / "file.png").write_bytes(b"x")
    _one_line_error("is a file", data.load, str(tmp_path / "file.png"), image_size=8)
    os.makedirs(tmp_path / "root")
    _one_line_error("has no class folders", data.load, str(tmp_path / "root"), image_size=8)
    os.makedirs(tmp_path / "root" / "cat")
    _write(tmp_path / "root" / "cat" / "0.png", (1, 2, 3))
    os.makedirs(tmp_path / "root" / "dog")
    (tmp_path / "root" / "dog" / "readme.txt").write_text("no images here")
    text = _one_line_error("has no images", data.load, str(tmp_path / "root"), image_size=8)
    assert "dog" in text
    (tmp_path / "root" / "dog" / "broken.jpg").write_text("not a jpeg")
    text = _one_line_error("unreadable image", data.load, str(tmp_path / "root"), image_size=8)
    assert "broken.jpg" in text
    assert time.monotonic() - start < 10


def test_unknown_spec_suggests():
    text = _one_line_error("unknown dataset", data.load, "cifar10", image_size=8)
    assert "'tfds:cifar10'" in text
    assert "'digits'" in _one_line_error("unknown dataset", data.load, "digts", image_size=8)


# ------------------------------------------------------------------ tensorflow-datasets


def test_tfds_unknown_name_suggests():
    text = _one_line_error("unknown tensorflow-datasets", data.load, "tfds:cifar_10",
                           image_size=32)
    assert "'tfds:cifar10'" in text
    _one_line_error("names no tfds", data.load, "tfds:", image_size=32)
    text = _one_line_error("versions", data.load, "tfds:imagenette/nope", image_size=32)
    assert "320px-v2" in text


def test_tfds_not_prepared_fails_fast_with_how_to(tmp_path):
    start = time.monotonic()
    text = _one_line_error("not prepared", data.load, "tfds:cifar10", image_size=32,
                           data_dir=str(tmp_path))
    for words in ("cifar10", "`data_dir`", "`manual_dir`", "cifar-10-binary.tar.gz"):  # the API's words
        assert words in text
    text = _one_line_error("lacks cifar-10-binary.tar.gz", data.load, "tfds:cifar10",
                           image_size=32, data_dir=str(tmp_path), manual_dir=str(tmp_path))
    assert time.monotonic() - start < 10


def test_tfds_cifar10_rejects_an_archive_that_is_not_the_original(tmp_path):
    """tfds checks the archive's checksum, so a home-made CIFAR-10 archive is refused."""
    import io
    import tarfile

    manual = tmp_path / "manual"
    os.makedirs(manual)
    with tarfile.open(manual / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            record = bytes([3]) + bytes(3072)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(record)
            tar.addfile(info, io.BytesIO(record))
    start = time.monotonic()
    _one_line_error("not the original", data.load, "tfds:cifar10", image_size=32,
                    data_dir=str(tmp_path / "data"), manual_dir=str(manual))
    assert time.monotonic() - start < 10


class TfresnetTinyShapes(tfds.core.GeneratorBasedBuilder):
    """Two classes of 16x16 images read from ``shapes.npz`` in the manual folder."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put shapes.npz in the manual folder."
    EXTRA_URL = None  # set by a test to make the builder ask for a download

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(16, 16, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light"])}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        if self.EXTRA_URL:
            dl_manager.download(self.EXTRA_URL)
        arrays = np.load(dl_manager.manual_dir / "shapes.npz")
        return {"train": self._generate_examples(arrays, "train"),
                "test": self._generate_examples(arrays, "test")}

    def _generate_examples(self, arrays, split):
        for i, (image, label) in enumerate(zip(arrays[f"x_{split}"], arrays[f"y_{split}"])):
            yield i, {"image": image, "label": int(label)}


def _shapes(manual, n_train=12, n_test=4):
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 2
        out[f"x_{split}"] = rng.integers(0, 128, (n, 16, 16, 3), dtype=np.uint8) + \
            (y * 127).astype(np.uint8)[:, None, None, None]
        out[f"y_{split}"] = y
    os.makedirs(manual, exist_ok=True)
    np.savez(manual / "shapes.npz", **out)
    return out


def test_tfds_prepares_from_manual_dir_then_reads_data_dir(tmp_path):
    arrays = _shapes(tmp_path / "manual")
    split = data.load("tfds:tfresnet_tiny_shapes", image_size=16,
                      data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "manual"))
    assert split.labels == ["dark", "light"]
    assert (split.num_train, split.num_val) == (12, 4)
    x, y = data.as_numpy(split.val)
    order = np.argsort([bytes(a) for a in arrays["x_test"].reshape(4, -1)])
    got = np.argsort([bytes(a) for a in x.reshape(4, -1)])
    assert np.array_equal(x[got], arrays["x_test"][order])
    assert np.array_equal(y[got], arrays["y_test"][order])

    # Prepared: a second load reads data_dir alone (manual folder gone), resized to 8.
    os.remove(tmp_path / "manual" / "shapes.npz")
    again = data.load("tfds:tfresnet_tiny_shapes", image_size=8,
                      data_dir=str(tmp_path / "data"))
    x8, y8 = data.as_numpy(again.train)
    assert x8.shape == (12, 8, 8, 3) and sorted(y8) == sorted(arrays["y_train"])
    # Light images (label 1) stay brighter than dark ones after resizing.
    assert x8[y8 == 1].mean() > x8[y8 == 0].mean() + 100


def test_tfds_prepare_never_downloads(tmp_path, monkeypatch):
    _shapes(tmp_path / "manual")
    monkeypatch.setattr(TfresnetTinyShapes, "EXTRA_URL", "http://127.0.0.1:9/extra.bin")
    start = time.monotonic()
    text = _one_line_error("nor downloadable here", data.load, "tfds:tfresnet_tiny_shapes",
                           image_size=16, data_dir=str(tmp_path / "data"),
                           manual_dir=str(tmp_path / "manual"))
    assert "http://127.0.0.1:9/extra.bin" in text
    assert time.monotonic() - start < 10


# ------------------------------------------------------------------ pipeline


def _pattern(n=6, size=12, seed=0):
    """Asymmetric random uint8 images (never equal to their mirror or a shift)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (n, size, size, 3), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int32)


def _denormalize(x):
    return np.round(np.asarray(x) * data.STD + data.MEAN).astype(np.int64)


def _shift(image, dy, dx):
    """The image moved by (dy, dx) with zeros coming in: a crop of the padded image."""
    pad = data.CIFAR_PAD
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    h, w = image.shape[:2]
    return padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def _is_shift(out, image):
    shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    return next(((dy, dx) for dy, dx in shifts if np.array_equal(out, _shift(image, dy, dx))),
                None)


def test_normalize_exact():
    assert data.normalize(np.array([0, 128, 255], np.uint8)).tolist() == [-1.0, 0.0, 0.9921875]
    tensor = data.normalize(tf.constant([0, 255], tf.uint8))
    assert tensor.dtype == tf.float32 and tensor.numpy().tolist() == [-1.0, 0.9921875]


def test_eval_pipeline_batches_normalizes_and_is_deterministic(digits32):
    ds = data.pipeline(digits32.val, batch_size=100, training=False, augment="cifar")
    batches = list(ds.as_numpy_iterator())
    assert [len(y) for _, y in batches] == [100, 100, 100, 59]
    x = np.concatenate([b[0] for b in batches])
    assert x.dtype == np.float32 and x.shape == (359, 32, 32, 3)
    assert x.min() == -1.0 and x.max() == 0.9921875
    raw, labels = data.as_numpy(digits32.val)
    assert np.array_equal(x, data.normalize(raw))  # no augmentation, same order
    assert np.array_equal(np.concatenate([b[1] for b in batches]), labels)
    again = np.concatenate([b[0] for b in ds.as_numpy_iterator()])
    assert np.array_equal(x, again)
    dropped = data.pipeline(digits32.val, batch_size=100, training=False, augment="none",
                            drop_remainder=True)
    assert [b[0].shape for b in dropped.as_numpy_iterator()] == [(100, 32, 32, 3)] * 3


def test_cifar_augmentation_shifts_with_zero_padding():
    images, labels = _pattern(n=40)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    out = data.pipeline(ds, batch_size=40, training=True, augment="cifar", flip=False)
    x, y = next(out.as_numpy_iterator())
    assert x.shape == (40, 12, 12, 3) and sorted(y) == list(range(40))
    shifts = [_is_shift(_denormalize(a), images[label].astype(np.int64))
              for a, label in zip(x, y)]
    assert None not in shifts  # every output is its own image moved, zeros coming in
    assert sum(s != (0, 0) for s in shifts) > 30  # and most are really moved
    assert len(set(shifts)) > 10


def test_cifar_augmentation_flips_by_default():
    images, labels = _pattern(n=40)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    x, y = next(data.pipeline(ds, batch_size=40, training=True, augment="cifar")
                .as_numpy_iterator())
    flipped = 0
    for a, label in zip(x, y):
        a, image = _denormalize(a), images[label].astype(np.int64)
        if _is_shift(a, image) is None:
            assert _is_shift(a, image[:, ::-1]) is not None
            flipped += 1
    assert 8 < flipped < 32


@pytest.mark.parametrize("augment", ["imagenet", "mobilenet"])
def test_resized_crop_augmentations(augment):
    images, labels = _pattern(n=16, size=24)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    x, y = next(data.pipeline(ds, batch_size=16, training=True, augment=augment)
                .as_numpy_iterator())
    assert x.shape == (16, 24, 24, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 0.9921875
    assert sum(not np.array_equal(_denormalize(a), images[b]) for a, b in zip(x, y)) >= 12


def test_training_pipeline_is_seeded():
    images, labels = _pattern(n=32)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))

    def first_epoch(seed):
        out = data.pipeline(ds, batch_size=32, training=True, augment="cifar", seed=seed)
        return next(out.as_numpy_iterator())

    a, b, c = first_epoch(0), first_epoch(0), first_epoch(1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])  # another shuffle
    assert not np.array_equal(a[1], np.arange(32))  # shuffled at all
    # Two epochs of one pipeline differ (reshuffled, new crops).
    out = data.pipeline(ds, batch_size=32, training=True, augment="cifar")
    e1, e2 = [next(out.as_numpy_iterator()) for _ in range(2)]
    assert not np.array_equal(e1[0], e2[0])


def test_no_augmentation_when_not_training_and_flip_defaults(digits32):
    images, labels = _pattern(n=8)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    for augment in flags.AUGMENTATIONS:
        x, y = next(data.pipeline(ds, batch_size=8, training=False, augment=augment)
                    .as_numpy_iterator())
        assert np.array_equal(_denormalize(x), images) and np.array_equal(y, labels)
    assert data.default_flip(ds, "cifar") is True
    assert data.default_flip(ds, "none") is False
    assert data.default_flip(digits32.train, "cifar") is False  # mirrored digits are not digits


def test_pipeline_bad_arguments(digits32):
    text = _one_line_error("augment must be one of", data.pipeline, digits32.train,
                           batch_size=8, training=True, augment="cifar10")
    assert "did you mean 'cifar'" in text
    _one_line_error("batch_size", data.pipeline, digits32.train, batch_size=0,
                    training=True, augment="none")


def test_as_numpy_limit_and_batched_input(digits32):
    x, y = data.as_numpy(digits32.val, limit=10)
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    xb, yb = data.as_numpy(digits32.val.batch(7), limit=10)
    assert np.array_equal(x, xb) and np.array_equal(y, yb)
    x0, _ = data.as_numpy(digits32.val, limit=0)
    assert x0.shape == (0, 32, 32, 3)


def test_every_model_names_an_augmentation_one_per_family():
    from tfresnet.models import registry

    infos = [registry.model_info(name) for name in registry.list_models()]
    assert {i.augment for i in infos} <= set(flags.AUGMENTATIONS) - {"none"}
    per_family = {(i.family, i.augment) for i in infos}
    assert len(per_family) == len({i.family for i in infos})

"""Data for training and export: three sources, one tf.data pipeline, one normalization.

Sources (:func:`load`), each giving a :class:`DataSplit` of unbatched
``(uint8 image [H, W, 3], int32 label)`` elements already resized to the model input:

* ``"digits"``: scikit-learn's bundled ``load_digits`` (1,797 real 8x8 grey digits,
  10 classes). Needs no download; the default.
* ``"tfds:<name>[/config][:version]"``: a tensorflow-datasets builder, read from a
  prepared ``data_dir`` or prepared from the original archives in ``manual_dir``.
  It never touches the network: anything else fails within seconds.
* a folder path: one sub-folder per class, the way most people hold their images.

:func:`pipeline` batches a split for training or evaluation with the papers'
augmentation per model family; :func:`normalize` is the one normalization rule of the
package, ``(pixel - 128) / 128``, which the INT8 export reproduces exactly as uint8 input
quantization (scale 1/128, zero point 128).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import os
import re
import sys
import tempfile
import weakref

import numpy as np
import tensorflow as tf

from tfresnet import _quiet

MEAN = 128.0
STD = 128.0

AUGMENTATIONS = ("cifar", "imagenet", "mobilenet", "none")
AUGMENT_FOR_FAMILY = {"resnet_cifar": "cifar", "resnet": "imagenet", "alexnet": "imagenet",
                      "mobilenet_v1": "mobilenet"}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# First bytes of each accepted format: a cheap check that finds files that are not
# images (or are empty) when the folder is read, not in the middle of training.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a")

CACHE_LIMIT_BYTES = 2 * 1024**3  # pipeline(cache="auto") caches decoded splits up to this
SHUFFLE_BUFFER = 10_000
CIFAR_PAD = 4
# Random-resized-crop area ranges (fraction of the image), aspect ratio 3/4..4/3 for both.
IMAGENET_SCALE = (0.08, 1.0)  # Inception / torchvision RandomResizedCrop
MOBILENET_SCALE = (0.25, 1.0)  # "less data augmentation" (MobileNet paper, sec. 4); our range
ASPECT_RATIO = (3 / 4, 4 / 3)

# Datasets made by load() remember whether horizontal flips keep their labels (digits:
# no), so pipeline(flip=None) gets it right without the caller passing it along.
_FLIP_OK = weakref.WeakKeyDictionary()


@dataclasses.dataclass
class DataSplit:
    """A train/validation pair of unbatched ``(uint8 [H, W, 3], int32 [])`` datasets.

    Attributes:
      train, val: the two datasets, images already resized to ``image_size``.
      labels: class names; label ``i`` is ``labels[i]``.
      num_train, num_val: number of elements in each.
      name: the spec it was loaded from (e.g. "digits", "tfds:cifar10", a folder).
      image_size: (height, width).
      flip_ok: whether a horizontal flip keeps an image's label (False for digits).
      skipped: image files of a folder left out as undecodable (``skip_bad_images``).
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    labels: list
    num_train: int
    num_val: int
    name: str
    image_size: tuple
    flip_ok: bool = True
    skipped: tuple = ()


def normalize(images):
    """Maps pixels 0..255 to ``(pixel - MEAN) / STD`` in float32: 0 -> -1, 255 -> 0.9921875.

    Args:
      images: uint8 or float pixels (0..255), a NumPy array or a tensor.

    Returns:
      float32 of the same kind (NumPy in, NumPy out).
    """
    if isinstance(images, (np.ndarray, np.generic, list, tuple, int, float)):
        return ((np.asarray(images, np.float32) - MEAN) / STD).astype(np.float32)
    return (tf.cast(images, tf.float32) - MEAN) / STD


# --------------------------------------------------------------------------- load


def load(spec="digits", *, image_size, data_dir=None, manual_dir=None, seed=0,
         val_fraction=0.2, skip_bad_images=False) -> DataSplit:
    """Loads a data set as a train/validation :class:`DataSplit`.

    Args:
      spec: "digits", "tfds:<name>[/config][:version]" or the path of an image folder
        (one sub-folder per class; sorted sub-folder names are the labels).
      image_size: int or (height, width) of the images handed out.
      data_dir: tensorflow-datasets folder holding prepared data (tfds only; default:
        tfds' own default, ``~/tensorflow_datasets``).
      manual_dir: folder holding the data set's original archives (tfds only), e.g.
        ``cifar-10-binary.tar.gz``; prepared into ``data_dir`` without the network.
      seed: seed of the train/validation split (digits and folders).
      val_fraction: share of each class put in validation (digits and folders; tfds
        data sets use their own validation or test split).
      skip_bad_images: image folders only: leave out the files TensorFlow cannot decode
        (each named in a warning on stderr, listed in ``DataSplit.skipped``) instead of
        failing on the first one. Every file is decoded once when the folder is read,
        so a bad one never stops training mid-epoch.

    Returns:
      A DataSplit.

    Raises:
      ValueError: one line naming the problem, for a bad spec, a missing or empty
        folder, an undecodable image (unless skipped), an unknown or unprepared tfds
        data set.
    """
    size = _image_size(image_size)
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive). "
                         f"Received: val_fraction={val_fraction!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    spec = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset must be 'digits', 'tfds:<name>' or an image folder. "
                         f"Received: dataset={spec!r}")
    if spec == "digits":
        split = _load_digits(size, seed, val_fraction)
    elif spec.startswith("tfds:"):
        split = _load_tfds(spec, size, data_dir, manual_dir, val_fraction)
    else:
        split = _load_folder(spec, size, seed, val_fraction, skip_bad_images)
    _FLIP_OK[split.train] = split.flip_ok
    _FLIP_OK[split.val] = split.flip_ok
    return split


def _image_size(image_size):
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                  for s in image_size))
    if not ok:
        raise ValueError(f"image_size must be a positive integer or (height, width). "
                         f"Received: image_size={image_size!r}")
    return tuple(image_size)


def _stratified_split(labels, val_fraction, seed):
    """Seeded per-class split: round(n * val_fraction) of each class to validation.

    Returns sorted (train_indices, val_indices).
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _fit(image, size):
    """Resizes a uint8 [h, w, c] image to uint8 [H, W, 3] (bilinear, antialiased).

    A non-square source is first centre-cropped to the target's aspect ratio, so
    objects keep their shape (as keras' ``crop_to_aspect_ratio=True``).
    """
    image = tf.convert_to_tensor(image)
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    height, width = size
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    crop_h = tf.minimum(h, tf.cast(tf.round(tf.cast(w, tf.float32) * height / width), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.round(tf.cast(h, tf.float32) * width / height), tf.int32))
    crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
    image = tf.image.crop_to_bounding_box(image, (h - crop_h) // 2, (w - crop_w) // 2,
                                          crop_h, crop_w)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return tf.ensure_shape(image, (height, width, 3))


def _from_arrays(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))


# digits --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_raw():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return pixels, bunch.target.astype(np.int32)


@functools.lru_cache(maxsize=4)
def _digits_resized(size):
    """All 1,797 digits as uint8 [N, H, W, 3], bilinear-upsampled (cached: ~1.8 MB at 32)."""
    pixels, _ = _digits_raw()
    images = tf.image.resize(pixels[..., None].astype(np.float32), size, method="bilinear")
    images = tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
    images = tf.image.grayscale_to_rgb(images).numpy()
    images.setflags(write=False)
    return images


def _load_digits(size, seed, val_fraction):
    """scikit-learn's digits: 8x8 grey 0..16 -> uint8 0..255, bilinear to ``size``, RGB.

    Bilinear (not nearest) upsampling: smooth strokes, closer to a real photo of a digit.
    Flips are off (``flip_ok=False``): a mirrored 2, 3, 4, 5, 7 or 9 is not a digit.
    """
    images = _digits_resized(size)
    _, labels = _digits_raw()
    train, val = _stratified_split(labels, val_fraction, seed)
    return DataSplit(train=_from_arrays(images[train], labels[train]),
                     val=_from_arrays(images[val], labels[val]),
                     labels=[str(d) for d in range(10)], num_train=len(train),
                     num_val=len(val), name="digits", image_size=size, flip_ok=False)


# image folder ----------------------------------------------------------------------


def _load_folder(root, size, seed, val_fraction, skip_bad_images=False):
    """A folder with one sub-folder of images per class (sorted names are the labels)."""
    if not os.path.exists(root):
        raise ValueError(_unknown_spec_message(root))
    if not os.path.isdir(root):
        raise ValueError(f"dataset {root!r} is a file, not a folder of class folders")
    classes = sorted(d.name for d in os.scandir(root)
                     if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {root!r} has no class folders: put each class's "
                         f"images in a sub-folder named after the class")
    if len(classes) < 2:
        raise ValueError(f"image folder {root!r} has one class folder ({classes[0]!r}); a "
                         f"classifier needs at least two classes, one sub-folder each")
    files = {}
    for name in classes:
        folder = os.path.join(root, name)
        files[name] = sorted(f.path for f in os.scandir(folder)
                             if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS))
        if not files[name]:
            raise ValueError(f"class folder {folder!r} has no images "
                             f"({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    bad = undecodable_images([p for name in classes for p in files[name]])
    if bad and not skip_bad_images:
        path, reason = next(iter(bad.items()))
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"unreadable image {path!r}: {reason}{more}; remove it or pass "
                         f"--skip-bad-images (skip_bad_images=True) to leave such files out")
    for path, reason in bad.items():
        print(f"warning: skipping unreadable image {path!r}: {reason}", file=sys.stderr)
    paths, labels = [], []
    for label, name in enumerate(classes):
        good = [p for p in files[name] if p not in bad]
        if not good:
            raise ValueError(f"class folder {os.path.join(root, name)!r} has no decodable "
                             f"images ({len(files[name])} skipped)")
        paths += good
        labels += [label] * len(good)
    paths, labels = np.array(paths), np.array(labels, np.int32)
    train, val = _stratified_split(labels, val_fraction, seed)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                   expand_animations=False)
        return _fit(image, size), label

    def dataset(idx):
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx]))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    # The absolute path, so that a run finds its data again from any working folder.
    return DataSplit(train=dataset(train), val=dataset(val), labels=classes,
                     num_train=len(train), num_val=len(val), name=os.path.abspath(root),
                     image_size=size, skipped=tuple(bad))


def shipped_name(name: str) -> str:
    """How shipped files (metadata, manifests) name a data set: an image folder by its
    base name, never a local path; ``digits`` and ``tfds:...`` as they are."""
    if name == "digits" or name.startswith("tfds:"):
        return name
    return os.path.basename(os.path.normpath(name)) or name


def undecodable_images(paths) -> dict:
    """``{path: reason}`` of the image files that training could not decode, in order.

    First a cheap look at each file's first bytes (not a JPEG, PNG, BMP or GIF: empty,
    text, ...), then every remaining file decoded once with ``tf.io.decode_image``, the
    very op training decodes with, so that what passes here decodes there (a lighter
    check such as PIL's ``verify()`` reads only a JPEG's headers and passes a truncated
    one, and PIL's decoder is not TensorFlow's). The decodes run in parallel in a
    tf.data pipeline (``ignore_errors`` drops the failures; the few failures are then
    decoded again one by one for their message): ~1 ms a photo-sized JPEG a core.
    """
    bad = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as err:
            bad[path] = f"cannot read it ({err.strerror})"
            continue
        if not head.startswith(_MAGIC):
            bad[path] = "not a JPEG, PNG, BMP or GIF file"
    rest = [p for p in paths if p not in bad]
    if rest:
        def decodes(path):
            image = tf.io.decode_image(tf.io.read_file(path), channels=3,
                                       expand_animations=False)
            return path, tf.shape(image)[0]

        ds = tf.data.Dataset.from_tensor_slices(rest).map(
            decodes, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        good = {p.decode() for p, _ in ds.ignore_errors().as_numpy_iterator()}
        for path in rest:
            if path not in good:
                bad[path] = _decode_error(path)
    return {p: bad[p] for p in paths if p in bad}


def _decode_error(path) -> str:
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except Exception as err:  # noqa: BLE001 - TensorFlow raises several kinds
        text = getattr(err, "message", None) or str(err)
        text = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", text, flags=re.S)
        return f"TensorFlow cannot decode it ({' '.join(text.split())[:160]})"
    return "TensorFlow cannot decode it"


def _unknown_spec_message(spec):
    hint = ""
    if "/" not in spec and os.sep not in spec:
        close = difflib.get_close_matches(spec, ["digits"] + _tfds_names(), n=3, cutoff=0.6)
        close = [c if c == "digits" else f"tfds:{c}" for c in close]
        if close:
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?"
    return (f"unknown dataset {spec!r}: expected 'digits', 'tfds:<name>' or an existing "
            f"image folder (no such folder).{hint}")


# tensorflow-datasets -----------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tfds_names():
    import tensorflow_datasets as tfds

    return sorted(tfds.list_builders(with_community_datasets=False))


def _parse_tfds(spec):
    full = spec[len("tfds:"):]
    name = full.split(":")[0].split("/")[0]
    if not name:
        raise ValueError(f"dataset {spec!r} names no tfds data set: use tfds:<name>"
                         f"[/config][:version], e.g. tfds:cifar10")
    return full, name


def _tfds_builder(spec, data_dir):
    import tensorflow_datasets as tfds

    full, name = _parse_tfds(spec)
    try:
        return tfds.builder(full, data_dir=data_dir, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, _tfds_names(), n=3, cutoff=0.6)
        hint = (f" Did you mean {' or '.join(repr('tfds:' + c) for c in close)}?"
                if close else "")
        raise ValueError(f"unknown tensorflow-datasets data set {name!r} in "
                         f"{spec!r}.{hint}") from None
    except Exception as err:  # noqa: BLE001 - bad config or version: say what exists
        text = _first_line(err)
        if "version" in text.lower() or "config" in text.lower():
            text = _variants(name, err)
        raise ValueError(f"cannot use {spec!r}: {text}") from None


def _variants(name, err):
    """One line on what a tfds name offers, for a bad config or version."""
    import tensorflow_datasets as tfds

    try:
        cls = tfds.builder_cls(name)
    except Exception:  # noqa: BLE001
        return _first_line(err)
    configs = [c.name for c in (getattr(cls, "BUILDER_CONFIGS", None) or [])]
    versions = sorted({str(cls.VERSION)} | {str(v) for v in
                                             getattr(cls, "SUPPORTED_VERSIONS", [])})
    text = f"{name} has versions {', '.join(versions)}"
    if not configs:
        return text + " and no configs"
    shown = ", ".join(configs[:12]) + (", ..." if len(configs) > 12 else "")
    return text + f" and configs {shown}"


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _load_tfds(spec, size, data_dir, manual_dir, val_fraction):
    """A tensorflow-datasets data set, prepared offline or already prepared."""
    with _quiet.absl_warnings_hidden():  # "Variant folder ... has no dataset_info.json"
        builder = _tfds_builder(spec, data_dir)
        if not builder.is_prepared():
            _prepare_offline(builder, spec, manual_dir)
        info = builder.info
    if not info.supervised_keys:
        raise ValueError(f"{spec!r} has no (image, label) supervised keys")
    image_key, label_key = info.supervised_keys[:2]
    label_feature = info.features[label_key]
    labels = list(getattr(label_feature, "names", None) or [])
    if not labels:
        raise ValueError(f"{spec!r}: its label {label_key!r} is not a class label")
    splits = info.splits
    if "train" not in splits:
        raise ValueError(f"{spec!r} has no 'train' split (splits: {', '.join(splits)})")
    val_name = next((s for s in ("validation", "test") if s in splits), None)
    if val_name:
        train_name = "train"
    else:  # only a train split: hold out its last val_fraction
        cut = int(round(100 * (1 - val_fraction)))
        train_name, val_name = f"train[:{cut}%]", f"train[{cut}%:]"

    def dataset(split):
        ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        ds = ds.map(lambda image, label: (_fit(image, size), tf.cast(label, tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds, splits[split].num_examples

    train, num_train = dataset(train_name)
    val, num_val = dataset(val_name)
    return DataSplit(train=train, val=val, labels=labels, num_train=num_train,
                     num_val=num_val, name=spec, image_size=size)


def _how_to_prepare(builder, spec):
    files = _expected_archives(builder)
    manual = (f"--manual-dir with {' and '.join(files)}" if files else
              "--manual-dir with the files its instructions name"
              if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) else
              "--manual-dir with its original archives")
    return (f"pass --data-dir with a copy prepared elsewhere (e.g. tfds.builder('"
            f"{spec[5:]}').download_and_prepare() on a machine online) or {manual}")


def _expected_archives(builder):
    try:
        return sorted({u.filename for u in builder.url_infos.values() if u.filename})
    except ModuleNotFoundError as err:  # tfds 4.9.10 imports it without declaring it
        raise ValueError(f"tensorflow-datasets needs the missing package {err.name!r} to "
                         f"prepare data: pip install {err.name}") from None
    except Exception:  # noqa: BLE001 - no checksums file: nothing to list
        return []


def _prepare_offline(builder, spec, manual_dir):
    """Prepares ``builder`` from ``manual_dir`` only; fails at once when it cannot."""
    import tensorflow_datasets as tfds

    where = f"{builder.data_dir!s}"
    if manual_dir is None:
        raise ValueError(f"{spec!r} is not prepared in {where} and nothing can be "
                         f"downloaded here: {_how_to_prepare(builder, spec)}")
    manual_dir = os.fspath(manual_dir)
    if not os.path.isdir(manual_dir):
        raise ValueError(f"manual_dir {manual_dir!r} for {spec!r} is not a folder")
    needs_manual = bool(getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None))
    missing = [f for f in _expected_archives(builder)
               if not os.path.exists(os.path.join(manual_dir, f))]
    if not needs_manual and (missing or not _expected_archives(builder)):
        raise ValueError(f"{spec!r} is not prepared in {where} and manual_dir "
                         f"{manual_dir!r} lacks "
                         f"{' and '.join(missing) if missing else 'its archives'}: "
                         f"{_how_to_prepare(builder, spec)}")
    if needs_manual and not os.listdir(manual_dir):
        raise ValueError(f"manual_dir {manual_dir!r} for {spec!r} is empty: "
                         f"{_how_to_prepare(builder, spec)}")
    from tensorflow_datasets.core.download import download_manager

    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    try:  # archives are extracted to a temporary folder, deleted afterwards
        with _no_downloads(spec), tempfile.TemporaryDirectory(prefix="tfresnet-tfds-") as tmp:
            builder.download_and_prepare(download_dir=tmp, download_config=config)
    except ValueError:
        raise
    except download_manager.NonMatchingChecksumError:
        raise ValueError(f"cannot prepare {spec!r}: an archive in manual_dir "
                         f"{manual_dir!r} is not the original one (its checksum differs "
                         f"from the one tfds expects)") from None
    except Exception as err:  # noqa: BLE001 - tfds raises many kinds; report one line
        raise ValueError(f"cannot prepare {spec!r} from manual_dir {manual_dir!r}: "
                         f"{_first_line(err)[:300]}") from None


@contextlib.contextmanager
def _no_downloads(spec):
    """Makes any download tfds would start fail at once instead of waiting on the network.

    tfds only downloads what it did not find in ``manual_dir``; this turns that case
    into a clear error (it patches tfds' private ``DownloadManager._download``).
    """
    from tensorflow_datasets.core.download import download_manager

    cls = download_manager.DownloadManager
    original = getattr(cls, "_download", None)

    def refuse(self, resource):
        url = getattr(resource, "url", resource)
        raise ValueError(f"{spec!r} needs {url}, which is neither in manual_dir nor "
                         f"downloadable here (no network)")

    if original is not None:
        cls._download = refuse
    try:
        yield
    finally:
        if original is not None:
            cls._download = original


# --------------------------------------------------------------------------- pipeline


def pipeline(ds, *, batch_size, training, augment, seed=0, drop_remainder=False,
             flip=None, cache="auto"):
    """Batches an unbatched ``(uint8 image, label)`` dataset for a model.

    Training: cache (decoded uint8) -> seeded shuffle -> augment (per element,
    stateless seeds) -> batch -> normalize -> prefetch. Evaluation: cache -> batch ->
    normalize -> prefetch, with no randomness.

    Augmentations (``augment``, used only when ``training``):

    * "cifar" (ResNet paper, sec. 4.2): zero-pad 4 pixels on each side, random crop
      back to the input size, random horizontal flip.
    * "imagenet": random resized crop (area 8%..100%, aspect 3/4..4/3, via
      ``tf.image.stateless_sample_distorted_bounding_box``) + flip; the Inception /
      torchvision recipe that later ResNet and AlexNet training uses (the ResNet
      paper's own scale augmentation resizes the short side to 256..480 instead).
    * "mobilenet": the same with area 25%..100% (the paper uses "less data
      augmentation" for small models and gives no numbers; this range is ours).
    * "none".

    Args:
      ds: unbatched dataset of (uint8 [H, W, 3], int32 []) as in a DataSplit.
      batch_size: images per batch (global batch under a distribution strategy).
      training: shuffle and augment when True.
      augment: one of AUGMENTATIONS (ignored when ``training`` is False).
      seed: seed of the shuffle and of every random crop / flip: same seed, same batches.
      drop_remainder: drop a last, smaller batch.
      flip: random horizontal flip when training; None: the dataset's own rule
        (``DataSplit.flip_ok``, False for digits) for a dataset from :func:`load`,
        else on for every augmentation but "none".
      cache: True, False or "auto" (cache when the decoded images take at most
        CACHE_LIMIT_BYTES).

    Returns:
      Dataset of (float32 normalized [B, H, W, 3], int32 [B]).
    """
    if augment not in AUGMENTATIONS:
        close = difflib.get_close_matches(str(augment), AUGMENTATIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}; {hint}"
                         f"Received: augment={augment!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. "
                         f"Received: batch_size={batch_size!r}")
    if cache not in (True, False, "auto"):
        raise ValueError(f"cache must be True, False or 'auto'. Received: cache={cache!r}")
    if flip is None:
        flip = default_flip(ds, augment)
    if cache is True or (cache == "auto" and _fits_in_memory(ds)):
        ds = ds.cache()
    if training:
        size = int(ds.cardinality())
        buffer = SHUFFLE_BUFFER if size < 0 else max(1, min(size, SHUFFLE_BUFFER))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if augment != "none" or flip:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, seeds.batch(2, drop_remainder=True)))
            step = functools.partial(_augment, kind=augment, flip=bool(flip))
            ds = ds.map(step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda x, y: (normalize(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def default_flip(ds, augment):
    """Whether :func:`pipeline` flips by default: never for "none" or for a dataset
    whose :class:`DataSplit` says flips change labels (digits)."""
    return augment != "none" and _FLIP_OK.get(ds, True)


def _fits_in_memory(ds):
    n = int(ds.cardinality())
    shape = ds.element_spec[0].shape
    if n < 0 or not shape.is_fully_defined():
        return False
    return n * int(np.prod(shape)) * ds.element_spec[0].dtype.size <= CACHE_LIMIT_BYTES


def _augment(element, seed, *, kind, flip):
    """One training image's augmentation with its own stateless seed pair."""
    image, label = element
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if kind == "cifar":
        image = cifar_crop(image, crop_seed)
    elif kind == "imagenet":
        image = random_resized_crop(image, crop_seed, IMAGENET_SCALE)
    elif kind == "mobilenet":
        image = random_resized_crop(image, crop_seed, MOBILENET_SCALE)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image, label


def cifar_crop(image, seed, pad=CIFAR_PAD):
    """Zero-pads ``pad`` pixels on each side and crops a random window of the input size."""
    height, width, channels = image.shape
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(padded, (height, width, channels), seed)


def random_resized_crop(image, seed, scale, ratio=ASPECT_RATIO):
    """Crops a random box (area ``scale``, aspect ``ratio``) and resizes it back (uint8)."""
    height, width, _ = image.shape
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=scale[0], aspect_ratio_range=ratio, area_range=scale,
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, box_size)
    crop = tf.image.resize(crop, (height, width), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8)


# --------------------------------------------------------------------------- as_numpy


def as_numpy(ds, limit=None):
    """Collects ``(uint8 images [N, H, W, 3], int32 labels [N])`` from a dataset.

    Args:
      ds: unbatched (or batched) dataset of (uint8 image, label).
      limit: at most this many images (None: all).

    Returns:
      Two NumPy arrays.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative integer. "
                         f"Received: limit={limit!r}")
    if len(ds.element_spec[0].shape) == 4:
        ds = ds.unbatch()
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for x, y in ds.batch(512).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    spec = ds.element_spec[0]
    if not images:
        return (np.zeros((0, *spec.shape), spec.dtype.as_numpy_dtype),
                np.zeros((0,), np.int32))
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)

"""tensorflow-datasets data sets, read or prepared without the network.

:func:`load_tfds` is what :func:`tfresnet.data.load` does with a
``"tfds:<name>[/config][:version]"`` spec: it reads a prepared ``data_dir`` or prepares
the data set from its original archives in ``manual_dir``, and fails within seconds with
one line saying what to do when neither is there.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import tempfile

import tensorflow as tf

from tfresnet.data.split import DataSplit, fit_image
from tfresnet.utils import quiet


@functools.lru_cache(maxsize=1)
def tfds_names():
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
        close = difflib.get_close_matches(name, tfds_names(), n=3, cutoff=0.6)
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


def load_tfds(spec, size, data_dir, manual_dir, val_fraction):
    """A tensorflow-datasets data set, prepared offline or already prepared."""
    with quiet.absl_warnings_hidden():  # "Variant folder ... has no dataset_info.json"
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
        ds = ds.map(lambda image, label: (fit_image(image, size), tf.cast(label, tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds, splits[split].num_examples

    train, num_train = dataset(train_name)
    val, num_val = dataset(val_name)
    return DataSplit(train=train, val=val, labels=labels, num_train=num_train,
                     num_val=num_val, name=spec, image_size=size)


def _how_to_prepare(builder, spec):
    files = _expected_archives(builder)
    manual = (f"`manual_dir` with {' and '.join(files)}" if files else
              "`manual_dir` with the files its instructions name"
              if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) else
              "`manual_dir` with its original archives")
    return (f"pass `data_dir` with a copy prepared elsewhere (e.g. tfds.builder('"
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

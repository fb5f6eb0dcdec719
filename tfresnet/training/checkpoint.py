"""Loading model and weights files without running code stored in them.

Keras model files can carry code: a ``Lambda`` layer holds marshalled Python bytecode,
and a config may name any module to import. Keras' own safe mode guards the zip
``.keras`` format only; an HDF5 model (whatever its name, ``x.keras`` included) goes
to the legacy loader, which has none. Every model this package loads goes through
:func:`load_model`, which

* reads the file's architecture as JSON (``config.json`` in a zip ``.keras``, the
  ``model_config`` attribute of an HDF5 file, read with h5py) without deserializing it,
* refuses any class outside the allowed set (Keras' built-in layers, initializers,
  regularizers and constraints, and this package's registered layers), any module
  outside Keras and this package, and ``Lambda``-like layers that hold code,
* then builds the model: a zip ``.keras`` with Keras' ``safe_mode=True`` loader, an
  HDF5 model from the checked JSON, its weights read with ``load_weights`` (arrays only).

Weights-only files (keras.applications ``.h5``) go through :func:`load_weights`, which
reads arrays and never a config. Refusals are ``ValueError`` with one line saying why.

Nothing here imports TensorFlow at module import: :func:`file_kind` checks a path
before a CLI pays for TensorFlow.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile

from tfresnet.utils import fileio
from tfresnet.training import runschema

ZIP, HDF5 = "zip .keras", "HDF5"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# Layers that hold Python code or name arbitrary TensorFlow functions.
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"})
# Values serialization_lib writes inline (tensors, arrays, bytes): data, never code.
_VALUE_CLASSES = frozenset({"__tensor__", "__numpy__", "__bytes__", "__keras_tensor__"})
_MODELS = frozenset({"Functional", "Sequential", "Model"})
_PACKAGE = "tfresnet"


def _is_hdf5(path) -> bool:
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return True
    import h5py  # noqa: PLC0415 - a user block moves the signature to 512, 1024, ...
    return bool(h5py.is_hdf5(path))


def file_kind(path) -> str:
    """``ZIP`` or ``HDF5`` for a readable model or weights file; else ValueError.

    Cheap (no TensorFlow): the CLIs call it while checking their flags.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("expected a model file, got an empty path. Received: ''")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not a model file (.keras or .h5)")
    if not os.path.exists(path):
        raise ValueError(f"no such model file: {path!r}")
    fileio.check_input_file(path, "model file")  # a FIFO, /dev/zero, a 200 GB file: refused
    try:
        if zipfile.is_zipfile(path):
            return ZIP
        if _is_hdf5(path):
            return HDF5
    except OSError as err:
        raise ValueError(f"cannot read {path!r}: {err.strerror}") from None
    raise ValueError(f"cannot load {path!r}: not a readable .keras model (neither a zip "
                     f".keras nor HDF5)")


def locate(path) -> tuple[str, str]:
    """(folder, model file) of a tfresnet.train run directory or a model file.

    Cheap (no TensorFlow, nothing deserialized): the CLIs call it while checking flags.

    Raises:
      ValueError: for an empty or missing path, a run directory without model.keras, a
        file of another name or format.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("expected a run directory or a .keras file. Received: ''")
    if os.path.isdir(path):
        folder, model_path = path, os.path.join(path, runschema.RUN_FILES.model)
        if not os.path.exists(model_path):
            raise ValueError(f"{path!r} is not a finished run directory: it has no "
                             f"{runschema.RUN_FILES.model}")
    elif os.path.exists(path):
        if not path.endswith(MODEL_SUFFIXES):
            raise ValueError(f"expected a run directory or a .keras file. "
                             f"Received: path={path!r}")
        folder, model_path = os.path.dirname(path) or ".", path
    else:
        raise ValueError(f"no such run directory or .keras file: {path!r} (no training "
                         f"run there)")
    file_kind(model_path)
    return folder, model_path


def read_config(path) -> tuple[str, dict | None]:
    """(kind, architecture JSON or None) of a model file, read without deserializing.

    None means the file holds weights only (e.g. keras.applications ``.h5`` files).
    """
    kind = file_kind(path)
    try:
        if kind == ZIP:
            with zipfile.ZipFile(path) as z:
                if "config.json" not in z.namelist():  # the .keras zip's own
                    return kind, None
                text = z.read("config.json")
        else:
            import h5py  # noqa: PLC0415
            with h5py.File(path, "r") as f:
                text = f.attrs.get("model_config")
            if text is None:
                return kind, None
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        config = json.loads(text)
    except (OSError, ValueError, zipfile.BadZipFile, RuntimeError) as err:
        raise ValueError(f"cannot read the model configuration in {path!r}: "
                         f"{' '.join(str(err).split())[:160]}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path!r} holds no Keras model configuration")
    return kind, config


@functools.lru_cache(maxsize=None)
def allowed_classes() -> frozenset:
    """Class names a model file may name: Keras' built-in layers, initializers,
    regularizers, constraints, dtype policies, and this package's layers."""
    import keras  # noqa: PLC0415

    from tfresnet.models import layers  # noqa: F401, PLC0415 - registers the package's layers
    names = set(_MODELS | _VALUE_CLASSES | {"Policy", "DTypePolicy"})
    for module in (keras.layers, keras.initializers, keras.regularizers, keras.constraints):
        names.update(n for n in dir(module) if isinstance(getattr(module, n), type))
    names.update(_package_objects())
    return frozenset(names - CODE_LAYERS)


def _package_objects() -> dict:
    """This package's registered Keras objects by registered name and class name."""
    import keras  # noqa: PLC0415

    from tfresnet.models import layers  # noqa: PLC0415
    objects = {}
    for cls in (layers.ChannelPad, layers.LocalResponseNormalization):
        objects[keras.saving.get_registered_name(cls)] = cls
        objects[cls.__name__] = cls
    return objects


def _module_allowed(module) -> bool:
    return (module is None or module in ("keras", "tf_keras", _PACKAGE)
            or module.startswith(("keras.", "tf_keras.", _PACKAGE + ".")))


def check_config(config, path) -> None:
    """ValueError unless every object ``config`` names is in :func:`allowed_classes`.

    Walks the whole JSON (the compile configuration aside, which is never loaded).
    """
    allowed = allowed_classes()
    import keras  # noqa: PLC0415
    activations = {n for n in dir(keras.activations) if not n.startswith("_")}

    def refuse(why):
        raise ValueError(f"refusing to load {path!r}: {why}; only Keras' built-in layers "
                         f"and this package's are loaded, so that no code in a model file "
                         f"runs")

    def walk(node, where):
        if isinstance(node, list):
            for item in node:
                walk(item, where)
            return
        if not isinstance(node, dict):
            return
        name = node.get("class_name")
        if name is not None:
            layer = node.get("config", {}).get("name") if isinstance(
                node.get("config"), dict) else None
            label = f"{name} layer {layer!r}" if layer else repr(name)
            if name in CODE_LAYERS:
                refuse(f"it has a {label}, which runs code stored in the file")
            module = node.get("module")
            if module == "builtins" and name == "function":
                if node.get("config") not in activations:
                    refuse(f"it names the function {node.get('config')!r}")
            elif not isinstance(module, (str, type(None))) or not _module_allowed(module):
                refuse(f"its {label} names the module {module!r}")
            elif name == "function":
                if node.get("config") not in activations:
                    refuse(f"it names the function {node.get('config')!r}")
            elif not isinstance(name, str) or (
                    name not in allowed and node.get("registered_name") not in allowed):
                refuse(f"it names the class {name!r}, not a Keras built-in or "
                       f"{_PACKAGE} layer")
            registered = node.get("registered_name")
            if (isinstance(registered, str) and ">" in registered
                    and registered not in allowed):
                refuse(f"it names the registered object {registered!r}")
        for key, value in node.items():
            if key != "compile_config":
                walk(value, where)

    walk(config, "")


def load_model(path):
    """The Keras model in ``path`` (zip ``.keras`` or HDF5, any name), uncompiled.

    Raises:
      ValueError: for a missing or unreadable file, a weights-only file, or a model
        that names a class, module or function outside the allowed set (a ``Lambda``
        layer, say), before anything in it is deserialized.
    """
    path = os.fspath(path)
    kind, config = read_config(path)
    if config is None:
        raise ValueError(f"{path!r} holds weights only, not a model (no architecture "
                         f"in it)")
    check_config(config, path)
    import keras  # noqa: PLC0415
    objects = _package_objects()
    try:
        if kind == ZIP:
            if not path.endswith(".keras"):
                raise ValueError("a zip Keras model must be named *.keras")
            return keras.models.load_model(path, compile=False, safe_mode=True,
                                           custom_objects=objects)
        with keras.saving.custom_object_scope(objects):
            model = keras.models.model_from_config(config, custom_objects=objects)
        model.load_weights(path)
        return model
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a bad file
        text = " ".join(str(err).split())[:200] or type(err).__name__
        raise ValueError(f"cannot load {path!r}: not a readable Keras model "
                         f"({text})") from None


def load_weights(model, path) -> None:
    """Loads the weights in ``path`` (HDF5 ``.h5`` or a zip ``.keras``) into ``model``.

    Only arrays are read: a model configuration in the file is never deserialized.

    Raises:
      ValueError: for a missing file, another format, or weights of another shape.
    """
    path = os.fspath(path)
    kind = file_kind(path)
    if kind == ZIP and not path.endswith(".keras"):
        raise ValueError(f"{path!r} is a zip file: a zip Keras file must be named *.keras")
    try:
        model.load_weights(path)
    except Exception as err:  # noqa: BLE001
        text = " ".join(str(err).split())[:200] or type(err).__name__
        raise ValueError(f"cannot load the weights in {path!r} into {model.name!r}: "
                         f"{text}") from None


def load_run(path):
    """Loads a trained model with its configuration and labels.

    The model is read with :func:`load_model`: no code stored in
    the file runs, whatever its name or format.

    Args:
      path: a run directory (with model.keras, config.json, labels.txt) or a model file
        (``.keras``, or ``.h5``/``.hdf5``; its folder's config.json and labels.txt are
        read when present).

    Returns:
      (keras.Model, config dict, list of labels).

    Raises:
      ValueError: for a missing path or file, a file that is not a readable model, or a
        model that could run code when loaded.
    """
    folder, model_path = locate(path)
    # the run folder (config.json, history.csv) is checked before the model is read
    config = (runschema.check_run_folder(folder) if os.path.isdir(path)
              else runschema.read_config(folder))
    labels = []
    model = load_model(model_path)
    labels_path = os.path.join(folder, runschema.RUN_FILES.labels)
    if os.path.isfile(labels_path):
        with open(labels_path) as f:
            labels = [line.rstrip("\n") for line in f if line.strip()]
    return model, config, labels

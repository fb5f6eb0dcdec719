"""Loading model and weights files without running code stored in them.

Keras model files can carry code: a ``Lambda`` layer holds marshalled Python bytecode,
and a config may name any module to import. Keras' own safe mode guards the zip
``.keras`` format only; an HDF5 model (whatever its name, ``x.keras`` included) goes
to the legacy loader, which has none. Every model this package loads goes through
:func:`load_model`, which

* reads the file's architecture as JSON (``config.json`` in a zip ``.keras``, the
  ``model_config`` attribute of an HDF5 file, read with h5py) without deserializing it,
* refuses any class outside the allowed set (Keras' built-in layers, initializers,
  regularizers, constraints and dtype policies, and this package's registered layers),
  any module outside Keras and this package, and ``Lambda``-like layers that hold code,
* then builds the model: a zip ``.keras`` with Keras' ``safe_mode=True`` loader, an
  HDF5 model from the checked JSON with Keras' HDF5 loader (arrays for the weights).

Files of this package's earlier releases (Keras 2, tf_keras) load too: Keras 3 reads
their HDF5 models, and their zip ``.keras`` files (whose configuration Keras 3 cannot
deserialize) are rebuilt with the registry builder from the run's config.json and
their weights loaded (:func:`rebuild_keras2`).

Weights-only files (keras.applications ``.h5``) go through
:func:`tfresnet.utils.kerasfiles.load_weights`, which reads arrays and never a config.
Refusals are ``ValueError`` with one line saying why.

Nothing here imports TensorFlow at module import: :func:`locate` checks a path before
a CLI pays for TensorFlow.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile

from tfresnet.training import runschema
from tfresnet.utils.kerasfiles import (
    CONFIG_MAX_BYTES,
    ZIP,
    ZIP_CONFIG,
    file_kind,
    load_weights,
    written_by_keras2,
)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# Layers that hold Python code or name arbitrary TensorFlow functions.
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"})
# Values serialization_lib writes inline (tensors, arrays, bytes, the tensors between a
# functional model's layers, slices): data, never code.
_VALUE_CLASSES = frozenset({"__tensor__", "__numpy__", "__bytes__", "__keras_tensor__",
                            "__slice__", "__ellipsis__"})
_MODELS = frozenset({"Functional", "Sequential", "Model"})
_PACKAGE = "tfresnet"


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
        runschema.check_links(folder)
        if not os.path.exists(model_path):
            raise ValueError(f"{path!r} is not a finished run directory: it has no "
                             f"{runschema.RUN_FILES.model}")
    elif os.path.exists(path):
        if not path.endswith(MODEL_SUFFIXES):
            raise ValueError(f"expected a run directory or a .keras file. "
                             f"Received: path={path!r}")
        folder, model_path = os.path.dirname(path) or ".", path
        # the run files read beside a model file (load_run)
        runschema.check_links(folder, (runschema.RUN_FILES.config, runschema.RUN_FILES.labels))
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
                if ZIP_CONFIG not in z.namelist():
                    return kind, None
                with z.open(ZIP_CONFIG) as f:  # its declared size is checked (file_kind);
                    text = f.read(CONFIG_MAX_BYTES + 1)  # what it holds is bounded too
                if len(text) > CONFIG_MAX_BYTES:
                    raise ValueError(f"its config.json holds more than the "
                                     f"{CONFIG_MAX_BYTES // 2 ** 20} MiB it may")
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
    for module in (keras.layers, keras.initializers, keras.regularizers, keras.constraints,
                   keras.dtype_policies):
        names.update(n for n in dir(module) if isinstance(getattr(module, n), type))
    names.update(_package_objects())
    return frozenset(names - CODE_LAYERS)


def _package_objects() -> dict:
    """This package's registered Keras objects by registered name and class name."""
    import keras  # noqa: PLC0415

    from tfresnet.models import batchnorm, layers  # noqa: PLC0415
    objects = {}
    for cls in (layers.ChannelPad, layers.LocalResponseNormalization,
                batchnorm.BatchNormalization):
        objects[keras.saving.get_registered_name(cls)] = cls
        objects[cls.__name__] = cls
    return objects


def _module_allowed(module) -> bool:
    # Keras 2 files (tf_keras, this package's earlier releases) name tf_keras' modules.
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


def load_model(path, run_config=None):
    """The Keras model in ``path`` (zip ``.keras`` or HDF5, any name), uncompiled.

    A zip ``.keras`` written by this package's earlier releases (Keras 2, tf_keras),
    whose configuration Keras 3 cannot deserialize, is rebuilt with the registry
    builder and its weights loaded (:func:`rebuild_keras2`); ``run_config`` is its run's
    config.json, which names the builder's arguments.

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
    if kind == ZIP and written_by_keras2(path):
        return rebuild_keras2(path, config, run_config)
    import keras  # noqa: PLC0415
    objects = _package_objects()
    try:
        if kind == ZIP:
            if not path.endswith(".keras"):
                raise ValueError("a zip Keras model must be named *.keras")
            return keras.models.load_model(path, compile=False, safe_mode=True,
                                           custom_objects=objects)
        import h5py  # noqa: PLC0415
        from keras.src.legacy.saving import legacy_h5_format  # noqa: PLC0415 - what
        # keras.models.load_model runs for a file named *.h5, whatever its name here
        with h5py.File(path, "r") as f:
            return legacy_h5_format.load_model_from_hdf5(
                f, custom_objects=objects, compile=False, safe_mode=True)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a bad file
        text = " ".join(str(err).split())[:200] or type(err).__name__
        raise ValueError(f"cannot load {path!r}: not a readable Keras model "
                         f"({text})") from None


def rebuild_keras2(path, config, run_config=None):
    """The registry model a Keras 2 (tf_keras) zip ``.keras`` holds, rebuilt in Keras 3.

    Keras 3 cannot deserialize a tf_keras configuration ("Could not locate class
    'Functional'") but reads its weights: the architecture is built again with the
    registry builder, from the run's config.json (``model``, ``model_kwargs``) when
    ``run_config`` is given, else from the file's own configuration (the model's name,
    e.g. ``mobilenet_v1_0.25_128``, its input shape and classifier), and the weights
    are loaded into it (arrays only). ``config`` is the file's configuration, already
    checked by :func:`check_config`.

    Raises:
      ValueError: one line naming the file, when its model is not a registry model or
        its weights do not fit the rebuilt one.
    """
    from tfresnet.models import registry  # noqa: PLC0415

    def refuse(why):
        raise ValueError(f"cannot load {path!r}: an earlier release (Keras 2, tf_keras) "
                         f"wrote it, which Keras 3 reads by building the registry model "
                         f"again, and {why}") from None

    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    name = inner.get("name")
    layers = [x for x in inner.get("layers") or [] if isinstance(x, dict)]
    shapes = [(x.get("config") or {}).get("batch_input_shape") for x in layers
              if x.get("class_name") == "InputLayer"]
    heads = [(x.get("config") or {}).get("units") for x in layers
             if (x.get("config") or {}).get("name") == "predictions"]
    if len(shapes) != 1 or not isinstance(shapes[0], list) or len(heads) != 1:
        refuse("its model has not one input and one 'predictions' classifier")
    run_config = run_config or {}
    info = (registry.find_model(run_config.get("model")) if run_config.get("model")
            else registry.find_model(name))
    if info is None:
        refuse(f"its model {name!r} is not a registry model ({', '.join(registry.list_models())})")
    kwargs = {k: v for k, v in (run_config.get("model_kwargs") or {}).items()
              if k != "weights" and v is not None}
    if not run_config.get("model") and info.multipliers is not None:
        kwargs.update(_multipliers_from_name(name, info.name))
    kwargs["name"] = name
    if not kwargs.get("res"):
        kwargs["input_shape"] = tuple(shapes[0][1:])
    try:
        model = info.builder(classes=heads[0], **kwargs)
    except (ValueError, TypeError) as err:
        refuse(f"the registry cannot build it again ({' '.join(str(err).split())[:160]})")
    if list(model.input_shape[1:]) != list(shapes[0][1:]):
        refuse(f"{info.name} with {kwargs} takes {model.input_shape[1:]}, the file "
               f"{tuple(shapes[0][1:])}")
    try:
        load_weights(model, path)
    except ValueError as err:
        refuse(f"its weights do not fit {info.name} built with {kwargs} ({err})")
    return model


def _multipliers_from_name(model_name, registry_name) -> dict:
    """``{"alpha": 0.25, "res": 128}`` from a built MobileNet's name
    (``mobilenet_v1_0.25_128``), {} when the name does not have them."""
    parts = str(model_name)[len(registry_name) + 1:].split("_")
    try:
        return {"alpha": float(parts[0]), "res": int(parts[1])} if len(parts) == 2 else {}
    except ValueError:
        return {}


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
    model = load_model(model_path, config)
    labels_path = os.path.join(folder, runschema.RUN_FILES.labels)
    if os.path.isfile(labels_path):
        with open(labels_path) as f:
            labels = [line.rstrip("\n") for line in f if line.strip()]
    return model, config, labels

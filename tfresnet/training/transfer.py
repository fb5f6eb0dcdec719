"""Transfer learning: a pretrained backbone, a new classifier, a frozen phase, fine-tuning.

What MediaPipe Model Maker's image classifier does, for every registry model:

1. :func:`load_weights` builds the registry model for the data's classes and loads
   ``weights`` into it. ``weights`` is

   * ``"imagenet"``: keras.applications' files from the Keras cache, never
     downloaded (which models have them is the registry's ``ModelInfo.imagenet``);
   * the path of a keras.applications ``.h5`` file, with or without its classifier;
   * a ``tfresnet.train`` run directory or ``.keras`` file of the same architecture
     (e.g. trained on another data set).

   Files are read with :mod:`tfresnet.training.checkpoint` (runs with ``load_model``, ``.h5``
   weights with ``load_weights``): no code stored in a file runs.

   The backbone (every layer but the ``predictions`` classifier) always loads; the
   classifier loads too when it has the data's classes (same labels), else a new one
   is built and the returned note says so. Another architecture is a one-line error
   naming both.
2. ``tfresnet.train.fit(model, weights=...)`` trains in two phases (the Keras
   transfer-learning guide's recipe):

   * **head**: the new classifier alone, the backbone frozen (``trainable = False`` on
     its layers, which in Keras also runs BatchNormalization in inference mode, so its
     moving statistics stay as loaded), with Adam at ``HEAD_LR`` until the validation
     loss has not improved by ``HEAD_MIN_DELTA`` for ``HEAD_PATIENCE`` epochs, at most
     ``freeze_epochs`` epochs (default ``HEAD_MAX_EPOCHS`` when the features are
     cached, else half of ``epochs``);
   * **fine_tune**: the rest of ``epochs`` (default the second half) trains the network
     from ``unfreeze_from`` (a layer or stage name; default: all of it) with the
     recipe's optimizer at ``fine_tune_lr`` (default ``FINE_TUNE_LR_FACTOR`` times the
     recipe's rate at the run's batch), BatchNormalization still frozen
     (``fine_tune_batchnorm=True`` trains it).

   Each phase keeps its best epoch (:func:`tfresnet.training.rundir.better`: validation
   accuracy, then loss), and the run keeps the better of the two phases: fine-tuning
   that does not beat the classifier on the frozen backbone is dropped, and the run
   says so. Each phase is a ``tfresnet.train.fit`` run in its own sub-folder of the run
   directory (``1_head/``, ``2_fine_tune/``), so an interrupted run resumes in the
   phase it was in; the run directory itself holds what every run holds (config.json
   with the phases, labels.txt, history.csv, model.keras). The runs are
   :mod:`tfresnet.training.transfer_fit`'s.
3. While only the classifier trains and nothing is augmented, the frozen backbone runs
   once and the classifier trains on its stored features (:func:`feature_cache_reason`,
   :func:`cached_features`).

The phases' rules (their lengths, optimizers, rates, and why): :mod:`tfresnet.training.phases`.
"""

from __future__ import annotations

import difflib
import os

import keras
import numpy as np
import tensorflow as tf

from tfresnet.data import pipelines
from tfresnet.models import registry
from tfresnet.models import weights as weights_lib
from tfresnet.training import checkpoint
from tfresnet.training.phases import ALL
from tfresnet.utils import fileio, kerasfiles

HEAD = "predictions"              # the classifier layer every registry model ends with
DEFAULT_AUGMENT = "none"          # the frozen phase can then reuse the backbone's features


# ----------------------------------------------------------------------------- weights


def models_with_imagenet() -> list[str]:
    """Registry names whose ImageNet weights keras.applications publishes."""
    return [n for n in registry.list_models() if registry.model_info(n).imagenet]


def describe(name, kwargs) -> str:
    """``mobilenet_v1 (alpha 0.25)``, ``resnet20``: a model as the messages name it."""
    extra = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in sorted((kwargs or {}).items()) if k in ("alpha",))
    return f"{name} ({extra})" if extra else name


def _shape_kwargs(kwargs, size):
    return {} if kwargs.get("res") else {"input_shape": (*size, 3)}


def _keras_app_call(app, kwargs, size, include_top) -> str:
    alpha = f"alpha={kwargs.get('alpha', 1.0):g}, " if app == "MobileNet" else ""
    shape = f"input_shape=({size[0]}, {size[1]}, 3), " if not include_top else ""
    return f"keras.applications.{app}({alpha}{shape}include_top={include_top}, weights='imagenet')"


def imagenet_path(name, kwargs, size, *, keep_head) -> str:
    """The Keras-cache file ``weights="imagenet"`` reads for this model.

    Without the classifier (a new head) the ``_notop`` file is used, or the full file
    when only that one is there.

    Raises:
      ValueError: for a model without ImageNet weights, an alpha or res without files,
        or a file missing from the cache (one line naming the file, the folder and the
        keras.applications call that fetches it on a machine online).
    """
    info = registry.model_info(name)
    if not info.imagenet:
        raise ValueError(
            f"{describe(name, kwargs)} has no ImageNet weights (keras.applications publishes "
            f"them for {', '.join(models_with_imagenet())}); pass a .h5 file or a tfresnet "
            f"run of this model instead. Received: weights='imagenet', model={name!r}")
    alpha = float(kwargs.get("alpha", 1.0))
    try:
        files = [weights_lib.cache_file(info.imagenet, include_top=top, alpha=alpha,
                                        rows=size[0], grid=info.multipliers)
                 for top in ((True,) if keep_head else (False, True))]
    except ValueError as err:
        raise ValueError(f"{err} (weights='imagenet')") from None
    for file in files:
        path = os.path.join(weights_lib.cache_dir(), file)
        if os.path.isfile(path):
            return path
    call = _keras_app_call(info.imagenet, kwargs, size, keep_head)
    raise ValueError(
        f"weights='imagenet' needs {files[0]} in {weights_lib.cache_dir()} and this package "
        f"never downloads: run {call} on a machine online and copy the file from its "
        f"~/.keras/models. Received: weights='imagenet'")


def _h5_layers(path):
    """(layer names, {layer: [weight shapes]}) of a Keras ``.h5`` weights or model file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in group.attrs["layer_names"]]
            shapes = {}
            for n in names:
                layer = group[n]
                shapes[n] = [tuple(layer[w].shape) for w in
                             (x.decode() if isinstance(x, bytes) else str(x)
                              for x in layer.attrs.get("weight_names", []))]
    except (OSError, KeyError) as err:
        raise ValueError(f"cannot read {path!r} as a Keras .h5 weights file "
                         f"({' '.join(str(err).split())[:120]}). Received: weights={path!r}") from None
    return names, shapes


def _describe_h5(names, shapes) -> str:
    """What architecture a keras.applications file holds, from its layers."""
    if "conv_dw_1" in shapes and shapes.get("conv1"):
        kernel = shapes["conv1"][0]
        return f"MobileNet (alpha {kernel[-1] / 32:g}, {kernel[2]} input channels)"
    if "conv2_block1_1_conv" in shapes:
        blocks = tuple(sum(1 for n in names if n.startswith(f"conv{s}_block")
                           and n.endswith("_1_conv")) for s in (3, 4))
        depth = {(4, 6): 50, (4, 23): 101, (8, 36): 152}.get(blocks)
        return f"ResNet{depth}" if depth else f"a ResNet with {blocks} blocks in stages 3-4"
    return f"an unknown architecture ({len(names)} layers: {', '.join(names[:3])}, ...)"


def _h5_has_top(shapes) -> tuple[bool, int]:
    for head in ("predictions", "conv_preds"):
        if shapes.get(head):
            return True, shapes[head][-1][-1]
    return False, 0


def backbone_view(model) -> keras.Model:
    """``model`` without its classifier: the same layers, output = the classifier's input."""
    return keras.Model(model.input, model.get_layer(HEAD).input, name=f"{model.name}_backbone")


def _from_h5(model, path, name, kwargs, keep_head_if_fits):
    info = registry.model_info(name)
    if not info.imagenet:
        raise ValueError(f"{path!r} is a keras.applications .h5 file; {describe(name, kwargs)} "
                         f"has no keras.applications twin (those are "
                         f"{', '.join(models_with_imagenet())}): pass a tfresnet run or "
                         f".keras file. Received: weights={path!r}")
    names, shapes = _h5_layers(path)  # names and shapes only: no array is read
    kerasfiles.file_kind(path)  # what its arrays declare, before any is read
    has_top, top_classes = _h5_has_top(shapes)
    alpha = float(kwargs.get("alpha", 1.0))
    src_kwargs = dict(weights=None, include_top=has_top, classes=top_classes or 1000,
                      input_shape=model.input_shape[1:])
    src = (keras.applications.MobileNet(alpha=alpha, **src_kwargs) if info.imagenet == "MobileNet"
           else getattr(keras.applications, info.imagenet)(**src_kwargs))
    want = f"keras.applications {info.imagenet}" + (f" (alpha {alpha:g})" if
                                                     info.imagenet == "MobileNet" else "")
    try:
        kerasfiles.load_weights(src, path)  # arrays only: no code in the file runs
    except (ValueError, OSError):
        raise ValueError(f"{path!r} holds {_describe_h5(names, shapes)} weights but the model "
                         f"is {describe(name, kwargs)} ({want}): another architecture. "
                         f"Received: weights={path!r}") from None
    keep_head = has_top and keep_head_if_fits and top_classes == model.output_shape[-1]
    weights_lib.transfer(src, model if keep_head else backbone_view(model))
    top = "with" if has_top else "without"
    return keep_head, f"keras.applications {info.imagenet} file {path} ({top} classifier)"


def _weighted(model, skip_head=True):
    return {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers
            if layer.weights and not (skip_head and layer.name == HEAD)}


def _from_run(model, path, name, kwargs, labels):
    src, config, src_labels = checkpoint.load_run(path)
    src_name = (describe(config["model"], config.get("model_kwargs"))
                if config.get("model") else src.name)
    ours, theirs = _weighted(model), _weighted(src)
    if ours != theirs or src.input_shape[-1] != model.input_shape[-1]:
        diff = sorted(set(ours) ^ set(theirs)) or [n for n in ours if ours[n] != theirs[n]]
        where = (f"input channels {src.input_shape[-1]} vs {model.input_shape[-1]}"
                 if src.input_shape[-1] != model.input_shape[-1] else
                 f"layer {diff[0]!r} differs" if diff else "the layers differ")
        raise ValueError(f"{path!r} holds {src_name} weights but the model is "
                         f"{describe(name, kwargs)}: another architecture ({where}). "
                         f"Received: weights={path!r}")
    for layer in model.layers:
        if layer.weights and layer.name != HEAD:
            layer.set_weights(src.get_layer(layer.name).get_weights())
    keep_head = (labels is not None and list(src_labels) == list(labels)
                 and src.get_layer(HEAD).output.shape[-1] == model.output_shape[-1])
    if keep_head:
        model.get_layer(HEAD).set_weights(src.get_layer(HEAD).get_weights())
    return keep_head, f"tfresnet run {path} ({src_name}, {len(src_labels) or '?'} classes)"


def load_weights(weights, name, *, classes, labels=None, model_kwargs=None, image_size=None):
    """The registry model ``name`` for ``classes`` classes with ``weights`` loaded.

    Args:
      weights: ``"imagenet"``, a keras.applications ``.h5`` path, or a tfresnet run
        directory / ``.keras`` file.
      name: registry name; model_kwargs: its builder arguments (``alpha``, ``res``).
      classes: the data's number of classes; labels: their names (a run's classifier
        is kept only when it was trained on the same labels).
      image_size: (height, width); None: the model's (``res`` or the paper's).

    Returns:
      (keras.Model, note): ``note`` says where the weights came from and whether the
      classifier is the loaded one or new.

    Raises:
      ValueError: one line naming the bad weights (missing, unreadable, another
        architecture, ``imagenet`` where there is none).
    """
    kwargs = dict(model_kwargs or {})
    info = registry.model_info(name)
    size = tuple(image_size) if image_size else (
        (kwargs["res"], kwargs["res"]) if kwargs.get("res") else tuple(info.input_shape[:2]))
    model = registry.get_model(name, classes=classes, **_shape_kwargs(kwargs, size), **kwargs)
    if weights == "imagenet":
        imagenet_classes = classes == 1000 and labels is None
        path = imagenet_path(name, kwargs, size, keep_head=imagenet_classes)
        keep, source = _from_h5(model, path, name, kwargs, imagenet_classes)
        source = f"ImageNet ({source})"
    else:
        path = os.fspath(weights)
        if not os.path.exists(path):
            raise ValueError(f"weights {path!r} do not exist: pass 'imagenet', a "
                             f"keras.applications .h5 file, or a tfresnet run directory or "
                             f".keras file. Received: weights={path!r}")
        if not os.path.isdir(path):  # a FIFO, /dev/zero, a 200 GB file: before opening
            fileio.check_input_file(path, "weights file")
        if os.path.isfile(path) and path.endswith(".h5"):
            keep, source = _from_h5(model, path, name, kwargs, labels is None)
        else:
            keep, source = _from_run(model, path, name, kwargs, labels)
    head = ("its classifier kept" if keep else
            f"a new {classes}-class classifier built for the data's classes")
    return model, f"weights: backbone from {source}; {head}"


# ----------------------------------------------------------------------------- freezing


def stages(model) -> list[str]:
    """Names ``unfreeze_from`` takes besides layer names: ``conv4`` (from
    ``conv4_block1_...``), the layer-name prefixes before ``_block``."""
    seen = []
    for layer in model.layers:
        if "_block" in layer.name:
            stage = layer.name.split("_block")[0]
            if stage not in seen:
                seen.append(stage)
    return seen


def unfreeze_index(model, unfreeze_from) -> int:
    """Index in ``model.layers`` of the first layer fine-tuned.

    ``unfreeze_from`` is None or ``"all"`` (every layer), a layer name, or a prefix of
    layer names followed by ``_`` (a stage such as ``conv4``, or ``conv_pw_12``).

    Raises:
      ValueError: for a name that matches no layer, with the closest names.
    """
    if unfreeze_from in (None, ALL):
        return 0
    names = [layer.name for layer in model.layers]
    for i, n in enumerate(names):
        if n == unfreeze_from or n.startswith(f"{unfreeze_from}_"):
            return i
    close = difflib.get_close_matches(str(unfreeze_from), stages(model) + names, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    choices = ", ".join(stages(model)) or ", ".join(names[1:4]) + ", ..."
    raise ValueError(f"unknown `unfreeze_from` {unfreeze_from!r} for {model.name}: {hint}give "
                     f"'all', a stage ({choices}) or a layer name. "
                     f"Received: unfreeze_from={unfreeze_from!r}")


def freeze_backbone(model) -> keras.Model:
    """Only the classifier trains; every backbone layer (BatchNorm in inference mode
    with it: Keras runs a non-trainable BatchNormalization with its moving statistics
    and never updates them)."""
    for layer in model.layers:
        layer.trainable = layer.name == HEAD
    return model


def unfreeze(model, unfreeze_from=None, *, batchnorm=False) -> keras.Model:
    """Layers from ``unfreeze_from`` on (and the classifier) train; those before stay
    frozen, and so does every BatchNormalization layer unless ``batchnorm`` (inference
    mode with the loaded statistics: see the module docstring)."""
    start = unfreeze_index(model, unfreeze_from)
    for i, layer in enumerate(model.layers):
        bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = (i >= start and (batchnorm or not bn)) or layer.name == HEAD
    return model


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


# ----------------------------------------------------------------------------- feature cache


def feature_cache_reason(net, *, augment="none", drop=False, mixed_precision=False):
    """None when :func:`tfresnet.train.fit` can train ``net`` on its backbone's stored
    features, else why not.

    That is when only the ``predictions`` classifier trains (the rest frozen, so
    BatchNormalization runs in inference mode and nothing before the classifier
    changes), the images are not augmented and no layer is random in training
    (dropout), as TensorFlow's image-retraining script cached its bottlenecks.
    """
    names = [layer.name for layer in net.layers]
    if HEAD not in names or net.layers[-1].name != HEAD:
        return f"the model does not end with a {HEAD!r} layer"
    if not net.get_layer(HEAD).trainable_weights:
        return "the classifier is frozen"
    if any(layer.trainable_weights for layer in net.layers if layer.name != HEAD):
        return "layers before the classifier train"
    if augment != "none":
        return f"augmentation {augment!r} changes the features every epoch"
    random = [layer.name for layer in net.layers if isinstance(layer, (
        keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout))]
    if random:
        return f"{random[0]} is random in training"
    if drop:
        return "steps_per_epoch is given"
    if mixed_precision:
        return "mixed precision"
    return None


def head_model(net) -> keras.Model:
    """The classifier alone, on the backbone's features: a copy of ``net``'s
    classifier layer (same configuration, regularizer included, and weights), built
    wherever it is called (outside a strategy's scope: on one device)."""
    head = net.get_layer(HEAD)
    features = keras.Input(head.input.shape[1:], name="features")
    copy = head.__class__.from_config(head.get_config())
    model = keras.Model(features, copy(features), name=f"{net.name}_head")
    copy.set_weights(head.get_weights())
    return model


def cached_features(net, split, *, batch_size, seed, skip_shuffles=0):
    """(train, val) datasets of the backbone's features, computed once.

    The training set is shuffled with the same seed and buffer as
    :func:`tfresnet.data.pipeline`, so its batches hold the same images in the same order;
    ``skip_shuffles``: shuffles (one an iteration over the set) drawn before it is
    returned, so that its first epoch sees the order of the pipeline's next one.
    """
    backbone = backbone_view(net)

    def features(ds):
        images = pipelines.pipeline(ds, batch_size=batch_size, training=False, augment="none")
        x = backbone.predict(images, verbose=0)
        y = np.concatenate([labels.numpy() for _, labels in images])
        return tf.data.Dataset.from_tensor_slices((x, y))

    train_ds, val_ds = features(split.train), features(split.val)
    size = int(train_ds.cardinality())
    train_ds = train_ds.shuffle(max(1, min(size, pipelines.SHUFFLE_BUFFER)), seed=seed,
                                reshuffle_each_iteration=True)
    for _ in range(skip_shuffles):
        iter(train_ds)  # a new iterator draws the next shuffle's seeds
    return (train_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE),
            val_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))

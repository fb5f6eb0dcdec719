"""Transfer learning: a pretrained backbone, a new classifier, a frozen phase, fine-tuning.

What MediaPipe Model Maker's image classifier does, for every registry model:

1. :func:`load_weights` builds the registry model for the data's classes and loads
   ``weights`` into it. ``weights`` is

   * ``"imagenet"``: keras.applications' files from the Keras cache, never
     downloaded (which models have them is the registry's ``ModelInfo.imagenet``);
   * the path of a keras.applications ``.h5`` file, with or without its classifier;
   * a ``tfresnet.train`` run directory or ``.keras`` file of the same architecture
     (e.g. trained on another data set).

   Files are read with :mod:`tfresnet.checkpoint` (runs with ``load_model``, ``.h5``
   weights with ``load_weights``): no code stored in a file runs.

   The backbone (every layer but the ``predictions`` classifier) always loads; the
   classifier loads too when it has the data's classes (same labels), else a new one
   is built and the returned note says so. Another architecture is a one-line error
   naming both.
2. ``tfresnet.train.fit(model, weights=...)`` trains in two phases (the Keras
   transfer-learning guide's recipe):

   * **head**: the new classifier alone, the backbone frozen (``trainable = False`` on
     its layers, which in Keras 2 also runs BatchNormalization in inference mode, so its
     moving statistics stay as loaded), with Adam at ``HEAD_LR`` until the validation
     loss has not improved by ``HEAD_MIN_DELTA`` for ``HEAD_PATIENCE`` epochs, at most
     ``freeze_epochs`` epochs (default ``HEAD_MAX_EPOCHS`` when the features are
     cached, else half of ``epochs``);
   * **fine_tune**: the rest of ``epochs`` (default the second half) trains the network
     from ``unfreeze_from`` (a layer or stage name; default: all of it) with the
     recipe's optimizer at ``fine_tune_lr`` (default ``FINE_TUNE_LR_FACTOR`` times the
     recipe's rate at the run's batch), BatchNormalization still frozen
     (``fine_tune_batchnorm=True`` trains it).

   Each phase keeps its best epoch (:func:`tfresnet.rundir.better`: validation
   accuracy, then loss), and the run keeps the better of the two phases: fine-tuning
   that does not beat the classifier on the frozen backbone is dropped, and the run
   says so. Each phase is a ``tfresnet.train.fit`` run in its own sub-folder of the run
   directory (``1_head/``, ``2_fine_tune/``), so an interrupted run resumes in the
   phase it was in; the run directory itself holds what every run holds (config.json
   with the phases, labels.txt, history.csv, model.keras). The runs are
   :mod:`tfresnet.transfer_fit`'s.
3. While only the classifier trains and nothing is augmented, the frozen backbone runs
   once and the classifier trains on its stored features (:func:`feature_cache_reason`,
   :func:`cached_features`).

Why these rules (measured with ``benchmarks/transfer_quality.py``; sources):

* The head is a linear softmax classifier on fixed features: a convex problem, which
  the CNN recipe's SGD at its rate (0.1 for the CIFAR ResNets) overshoots (its loss
  rose from 3.1 to 7.0 in 4 epochs on 75 images) and which a fixed 5 epochs stop far
  from its optimum. Adam, which scales each weight's step by its gradient's own size,
  with early stopping on the validation loss (Keras' ``EarlyStopping``) trains it to
  convergence; on stored features an epoch costs milliseconds. MediaPipe Model Maker
  and the Keras transfer-learning guide also train the new head with an adaptive
  optimizer (Adam / RMSprop) before fine-tuning.
* BatchNormalization stays in inference mode during fine-tuning: "when you unfreeze a
  model that contains BatchNormalization layers in order to do fine-tuning, you should
  keep the BatchNormalization layers in inference mode ... Otherwise the updates
  applied to the non-trainable weights will suddenly destroy what the model has
  learned" (Keras guide "Transfer learning & fine-tuning", F. Chollet). With batches of
  8 images, training-mode statistics replace the pretrained ones (the validation loss
  of a MobileNet 0.25 jumped from 0.3 to 7.3 in the first fine-tuning epoch). In Keras
  2 a layer in inference mode is a layer with ``trainable = False``, so its scale and
  offset stay fixed too.
* Fine-tuning starts from a converged head at a tenth of the recipe's rate (the guide
  uses a "very low learning rate"; Model Maker's fine-tuning lowers it likewise).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfresnet import checkpoint, data, registry
from tfresnet import weights as weights_lib

HEAD = "predictions"              # the classifier layer every registry model ends with
DEFAULT_EPOCHS = 10
DEFAULT_AUGMENT = "none"          # the frozen phase can then reuse the backbone's features
PHASE_DIRS = ("1_head", "2_fine_tune")
PHASES = ("head", "fine_tune")
ALL = "all"
# The classifier-alone phase: a linear classifier on fixed features (see the module
# docstring, "Why these rules").
HEAD_OPTIMIZER = "adam"
HEAD_LR = 0.1
HEAD_MAX_EPOCHS = 200             # its bound when the features are cached (cheap epochs)
HEAD_PATIENCE = 20                # early stopping: epochs without a better val loss
HEAD_MIN_DELTA = 1e-3             # ... by at least this much
# Fine-tuning: this times the recipe's rate at the run's batch; BatchNorm frozen.
FINE_TUNE_LR_FACTOR = 0.1
# What the transfer flags mean, for every CLI that has them (tfresnet.train, export.tflite).
FLAG_HELP = {
    "freeze_epochs": f"with --weights: at most N epochs of the classifier alone, the "
                     f"backbone frozen, ended sooner by early stopping on the validation "
                     f"loss; the other --epochs minus N fine-tune (default: at most "
                     f"{HEAD_MAX_EPOCHS} epochs on the backbone's stored features, else half "
                     f"of --epochs; the second half of --epochs fine-tunes)",
    "fine_tune_lr": "with --weights: the fine-tuning learning rate (default a tenth of "
                    "the recipe's at the run's batch)",
    "fine_tune_batchnorm": "with --weights: BatchNorm layers train while fine-tuning "
                           "(default: frozen in inference mode with their pretrained "
                           "statistics)",
}


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
                                        rows=size[0])
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
    names, shapes = _h5_layers(path)
    has_top, top_classes = _h5_has_top(shapes)
    alpha = float(kwargs.get("alpha", 1.0))
    src_kwargs = dict(weights=None, include_top=has_top, classes=top_classes or 1000,
                      input_shape=model.input_shape[1:])
    src = (keras.applications.MobileNet(alpha=alpha, **src_kwargs) if info.imagenet == "MobileNet"
           else getattr(keras.applications, info.imagenet)(**src_kwargs))
    want = f"keras.applications {info.imagenet}" + (f" (alpha {alpha:g})" if
                                                     info.imagenet == "MobileNet" else "")
    try:
        checkpoint.load_weights(src, path)  # arrays only: no code in the file runs
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
                 and src.get_layer(HEAD).output_shape[-1] == model.output_shape[-1])
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
        if os.path.isfile(path) and path.endswith(".h5"):
            keep, source = _from_h5(model, path, name, kwargs, labels is None)
        else:
            keep, source = _from_run(model, path, name, kwargs, labels)
    head = ("its classifier kept" if keep else
            f"a new {classes}-class classifier built for the data's classes")
    return model, f"weights: backbone from {source}; {head}"


# ----------------------------------------------------------------------------- freezing


def stages(model) -> list[str]:
    """Names ``--unfreeze-from`` takes besides layer names: ``conv4`` (from
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
    raise ValueError(f"unknown --unfreeze-from {unfreeze_from!r} for {model.name}: {hint}give "
                     f"'all', a stage ({choices}) or a layer name. "
                     f"Received: unfreeze_from={unfreeze_from!r}")


def freeze_backbone(model) -> keras.Model:
    """Only the classifier trains; every backbone layer (BatchNorm in inference mode
    with it: Keras 2 runs a non-trainable BatchNormalization with its moving statistics
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


# ----------------------------------------------------------------------------- fit


@dataclasses.dataclass(frozen=True)
class Phases:
    """The two phases' lengths and what they train (validated by :func:`plan_phases`).

    Attributes:
      epochs: the run's epochs (``--epochs``).
      freeze_epochs: the bound on the head phase (``--freeze-epochs``), or None: the
        default bound, :func:`head_bound`.
      fine_tune_epochs: the fine-tuning phase's epochs.
    """

    epochs: int
    freeze_epochs: int | None
    unfreeze_from: str
    fine_tune_lr: float | None
    fine_tune_epochs: int
    fine_tune_batchnorm: bool = False

    def head_bound(self, cached: bool) -> int:
        """The head phase's bound: ``freeze_epochs`` when given, else
        ``HEAD_MAX_EPOCHS`` on cached features and half of ``epochs`` without (every
        epoch then runs the whole backbone)."""
        if self.freeze_epochs is not None:
            return self.freeze_epochs
        return HEAD_MAX_EPOCHS if cached else self.epochs - self.fine_tune_epochs


@dataclasses.dataclass(frozen=True)
class PhaseRule:
    """How :func:`tfresnet.fitting.fit_run` trains one phase of a transfer run.

    Attributes:
      kind: ``"head"`` or ``"fine_tune"`` (``PHASES``).
      optimizer: replaces the recipe's (with a constant rate), or None.
      lr: the rate, or None for ``lr_factor`` times the recipe's rate at the batch.
      lr_factor: see ``lr``.
      lr_source: where ``lr`` comes from, for the summary (None: given by the user).
      patience, min_delta: early stopping on the validation loss (None: none).
      recipe_reason: why the run's recipe is the one it is (the phase's run is given
        the network, not the registry name that chose the recipe).
    """

    kind: str
    optimizer: str | None = None
    lr: float | None = None
    lr_factor: float = 1.0
    lr_source: str | None = None
    patience: int | None = None
    min_delta: float = 0.0
    recipe_reason: str | None = None


def head_rule(lr=None, recipe_reason=None) -> PhaseRule:
    """The head phase: Adam, constant rate, early stopping (``lr`` given: that rate)."""
    return PhaseRule("head", optimizer=HEAD_OPTIMIZER, lr=lr or HEAD_LR,
                     lr_source=None if lr else (
                         f"head rule: {HEAD_OPTIMIZER} {HEAD_LR:g} for a linear "
                         f"classifier on fixed features"),
                     patience=HEAD_PATIENCE, min_delta=HEAD_MIN_DELTA,
                     recipe_reason=recipe_reason)


def fine_tune_rule(fine_tune_lr=None, recipe_reason=None) -> PhaseRule:
    """The fine-tuning phase: the recipe's optimizer at a tenth of its rate (or given)."""
    return PhaseRule("fine_tune", lr=fine_tune_lr, lr_factor=FINE_TUNE_LR_FACTOR,
                     recipe_reason=recipe_reason)


def plan_phases(epochs=None, freeze_epochs=None, unfreeze_from=None, fine_tune_lr=None,
                fine_tune_batchnorm=False) -> Phases:
    """Checks the phase settings. Defaults: ``DEFAULT_EPOCHS`` epochs, the second half
    of them fine-tuning; the head phase's bound is :meth:`Phases.head_bound`.

    Raises:
      ValueError: for a non-integer or negative count, ``freeze_epochs > epochs``, a
        fine-tuning rate that is not a number > 0.
    """
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs!r}")
    if freeze_epochs is not None and (
            isinstance(freeze_epochs, bool) or not isinstance(freeze_epochs, (int, np.integer))
            or freeze_epochs < 0):
        raise ValueError(f"--freeze-epochs must be an integer >= 0. "
                         f"Received: --freeze-epochs={freeze_epochs!r}")
    if freeze_epochs is not None and freeze_epochs > epochs:
        raise ValueError(f"--freeze-epochs ({freeze_epochs}) is larger than --epochs "
                         f"({epochs}): the frozen epochs are the first of all the epochs. "
                         f"Received: --freeze-epochs={freeze_epochs}, --epochs={epochs}")
    if fine_tune_lr is not None and (isinstance(fine_tune_lr, bool)
                                     or not isinstance(fine_tune_lr, (int, float))
                                     or not math.isfinite(fine_tune_lr) or fine_tune_lr <= 0):
        raise ValueError(f"--fine-tune-lr must be a number > 0. "
                         f"Received: --fine-tune-lr={fine_tune_lr!r}")
    if unfreeze_from is not None and (not isinstance(unfreeze_from, str) or not unfreeze_from):
        raise ValueError(f"--unfreeze-from must be 'all', a stage or a layer name. "
                         f"Received: --unfreeze-from={unfreeze_from!r}")
    fine_tune_epochs = epochs - (math.ceil(epochs / 2) if freeze_epochs is None
                                 else freeze_epochs)
    return Phases(int(epochs), None if freeze_epochs is None else int(freeze_epochs),
                  unfreeze_from or ALL, fine_tune_lr, int(fine_tune_epochs),
                  bool(fine_tune_batchnorm))


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
    features = keras.Input(head.input_shape[1:], name="features")
    copy = head.__class__.from_config(head.get_config())
    model = keras.Model(features, copy(features), name=f"{net.name}_head")
    copy.set_weights(head.get_weights())
    return model


def cached_features(net, split, *, batch_size, seed):
    """(train, val) datasets of the backbone's features, computed once.

    The training set is shuffled with the same seed and buffer as
    :func:`tfresnet.data.pipeline`, so its batches hold the same images in the same order.
    """
    backbone = backbone_view(net)

    def features(ds):
        images = data.pipeline(ds, batch_size=batch_size, training=False, augment="none")
        x = backbone.predict(images, verbose=0)
        y = np.concatenate([labels.numpy() for _, labels in images])
        return tf.data.Dataset.from_tensor_slices((x, y))

    train_ds, val_ds = features(split.train), features(split.val)
    size = int(train_ds.cardinality())
    train_ds = train_ds.shuffle(max(1, min(size, data.SHUFFLE_BUFFER)), seed=seed,
                                reshuffle_each_iteration=True)
    return (train_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE),
            val_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))

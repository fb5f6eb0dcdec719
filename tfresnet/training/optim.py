"""What a model trains with: its trainable copy, learning-rate schedule, optimizer and loss.

:func:`prepare_model` copies a model for training (weight decay as kernel regularizers,
optional mixed precision and synchronized BatchNorm); :func:`portable_model` copies the
trained model back to plain float32 layers outside any strategy. :func:`lr_schedule`,
:func:`make_optimizer` and :func:`compile_model` turn a :class:`tfresnet.training.recipes.Recipe`
into a compiled model.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def model_depth(model) -> int:
    """Weighted layers (Conv2D, DepthwiseConv2D, Dense): 110 for resnet110."""
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return sum(isinstance(layer, kinds) for layer in model.layers)


def prepare_model(model, *, weight_decay=0.0, depthwise_weight_decay=0.0,
                  mixed_precision=False, sync_batchnorm=False) -> keras.Model:
    """A trainable copy of ``model``: L2 decay on kernels, optional mixed precision/SyncBN.

    Call it inside ``strategy.scope()`` so the copy's variables are distributed. The
    copy has ``model``'s weights. Weight decay is ``kernel_regularizer=L2(wd / 2)`` on
    Conv2D and Dense layers and ``depthwise_regularizer=L2(dw_wd / 2)`` on
    DepthwiseConv2D (gradient ``wd * w``, the papers' weight decay); biases and BN are
    not decayed. With ``mixed_precision`` every layer computes in float16 (GPU) or
    bfloat16 (CPU) with float32 variables, except the softmax classifier, kept float32.
    ``sync_batchnorm`` makes BatchNormalization use the statistics of the whole global
    batch instead of each replica's share.

    Raises:
      ValueError: for a model Keras cannot clone (a subclassed model).
    """
    policy = mixed_policy_name() if mixed_precision else None

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            config["depthwise_regularizer"] = _l2(depthwise_weight_decay)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            config["kernel_regularizer"] = _l2(weight_decay)
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = bool(sync_batchnorm)
        if policy and not isinstance(layer, keras.layers.InputLayer):
            softmax_head = (isinstance(layer, keras.layers.Dense)
                            and config.get("activation") == "softmax")
            config["dtype"] = "float32" if softmax_head else policy
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except ValueError as err:
        raise ValueError(f"fit needs a functional or Sequential keras.Model: "
                         f"{' '.join(str(err).split())[:200]}") from None
    copy.set_weights(model.get_weights())
    return copy


def _l2(decay):
    return keras.regularizers.L2(decay / 2) if decay else None


def mixed_policy_name() -> str:
    """``"mixed_float16"`` with a GPU, else ``"mixed_bfloat16"`` (what CPUs run fast)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def portable_model(model) -> keras.Model:
    """A copy of ``model`` outside any strategy: float32, plain BatchNormalization.

    The copy holds what ``get_weights`` reads: under MirroredStrategy the replicas'
    BatchNormalization moving averages, averaged. (During training each replica
    evaluates with its own moving averages, so the last epoch's val_accuracy can
    differ slightly from the copy's.) It keeps the weight-decay regularizers.
    """

    def clone(layer):
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "float32"
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = False
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def lr_schedule(recipe, *, lr, steps_per_epoch, total_steps, depth):
    """The learning rate (a number or a keras schedule) for ``recipe``.

    "steps": ``lr`` times ``decay_factor`` at each of ``boundaries`` x ``total_steps``,
    after a warm-up for deep networks (see :mod:`tfresnet.training.recipes`); "exponential":
    times ``epoch_decay`` after each epoch; "plateau" and "constant": the number ``lr``
    (plateau decays through a callback).
    """
    total = total_steps
    if recipe.schedule == "steps":
        # Step s (0-based) runs at values[i] while s <= bounds[i]: a decay "at 32k"
        # applies from the 32,001st step, i.e. s = 32,000 -> bound 31,999.
        bounds = [max(1, round(f * total)) - 1 for f in recipe.boundaries]
        values = [lr * recipe.decay_factor ** i for i in range(len(bounds) + 1)]
        if recipe.warmup_depth and depth >= recipe.warmup_depth and recipe.warmup_fraction:
            warmup = max(1, round(recipe.warmup_fraction * total)) - 1
            bounds, values = [warmup] + bounds, [lr * recipe.warmup_factor] + values
        # PiecewiseConstantDecay needs strictly increasing boundaries.
        keep = [i for i in range(len(bounds)) if i == 0 or bounds[i] > bounds[i - 1]]
        bounds = [bounds[i] for i in keep]
        values = [values[0]] + [values[i + 1] for i in keep]
        return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    if recipe.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=steps_per_epoch, decay_rate=recipe.epoch_decay, staircase=True)
    return lr


def make_optimizer(recipe, learning_rate):
    """SGD with momentum, RMSprop or Adam per ``recipe`` (no built-in decay: see
    prepare_model)."""
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=recipe.rho,
                                        momentum=recipe.momentum, epsilon=recipe.epsilon)
    return keras.optimizers.SGD(learning_rate, momentum=recipe.momentum)


def compile_model(model, optimizer, *, jit_compile=False, steps_per_execution=1):
    """Sparse categorical cross-entropy on the softmax output, accuracy metric;
    ``steps_per_execution`` training steps per call of the train function."""
    if model.dtype_policy.name == "mixed_float16" or any(
            layer.dtype_policy.name == "mixed_float16" for layer in model.layers):
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    return model


def current_lr(model, schedule=None) -> float:
    """The learning rate of the optimizer's next step.

    Args:
      schedule: the keras LearningRateSchedule the optimizer was made with, if any.
        (With a schedule, ``optimizer.learning_rate`` holds the rate of the last step.)
    """
    optimizer = model.optimizer
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(optimizer.iterations.numpy()))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

"""The papers' training recipes as named presets.

Each :class:`Recipe` holds the hyper-parameters a paper gives for its network, at
the paper's batch size (``ref_batch``). :func:`tfresnet.train.fit` scales the
learning rate linearly with the global batch (``lr * global_batch / ref_batch``,
Goyal et al. 2017) unless the learning rate is given explicitly, and every field
can be overridden (``Recipe.replace`` or the ``tfresnet.train`` flags).

Learning-rate schedules:

* ``"steps"`` (CIFAR ResNet): the paper divides the LR by 10 at 32k and 48k
  iterations and stops at 64k. The boundaries are kept as *fractions of the total
  number of steps* (32k/64k = 0.5, 48k/64k = 0.75), so a short run (a few epochs on
  digits) decays at the same relative points. Without ``epochs``, training runs the
  paper's ``total_steps`` (64k iterations), where the fractions give exactly 32k and
  48k. The warm-up of ResNet-110 (LR 0.01 "until the training error is below 80%",
  about 400 iterations) is applied to networks of at least ``warmup_depth`` weighted
  layers, for ``warmup_fraction`` (400/64k) of the total steps (at least 1 step) at
  ``warmup_factor`` (0.1) times the LR.
  Keras' SGD keeps the learning rate inside the momentum (``v = 0.9 v - lr g``, as
  Caffe), so after a decay the velocity gathered at the higher rate coasts on for
  about ``1 / (1 - momentum)`` steps; in runs of a few hundred steps this shows as a
  short rise of the training loss in the epoch after a decay, gone by the next.
* ``"plateau"`` (ImageNet ResNet, AlexNet): LR divided by ``decay_factor`` when the
  validation loss has not improved for ``patience`` epochs (ReduceLROnPlateau).
* ``"exponential"`` (MobileNet): LR multiplied by ``epoch_decay`` after every epoch.
* ``"constant"``: no schedule.

Weight decay is an L2 penalty on the kernels of Conv2D and Dense layers (never on
biases or BatchNormalization), as in the papers: ``kernel_regularizer=L2(wd / 2)``,
whose gradient is ``wd * w``, the Caffe/Torch "weight decay". Depthwise kernels use
``depthwise_weight_decay`` (MobileNet: "very little or no weight decay on the
depthwise filters"). Regularizers are part of the model config, so they work under
every tf.distribute strategy (Keras scales them per replica) and survive the
model cloning that ``export.convert.qat.quantize_model`` does.
"""

from __future__ import annotations

import dataclasses
import difflib
import math

SCHEDULES = ("steps", "plateau", "exponential", "constant")
OPTIMIZERS = ("sgd", "rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training recipe (see the module docstring).

    Attributes:
      name: preset name.
      paper: where the values come from.
      optimizer: ``"sgd"`` (with momentum), ``"rmsprop"`` or ``"adam"`` (Keras' defaults
        but the rate; the transfer head's, see :mod:`tfresnet.training.transfer`).
      lr: learning rate at ``ref_batch`` images per step.
      ref_batch: the paper's global batch size.
      momentum: SGD or RMSprop momentum.
      weight_decay: L2 weight decay on Conv2D and Dense kernels.
      depthwise_weight_decay: L2 weight decay on DepthwiseConv2D kernels.
      schedule: one of ``SCHEDULES``.
      epochs: default number of epochs, or None for ``total_steps``.
      total_steps: default training length in steps when ``epochs`` is None.
      boundaries: ``"steps"`` schedule: decay points as fractions of the total steps.
      decay_factor: LR multiplier at each boundary or plateau.
      patience: ``"plateau"`` schedule: epochs without improvement before a decay.
      epoch_decay: ``"exponential"`` schedule: LR multiplier per epoch.
      warmup_depth: warm up networks with at least this many weighted layers (None: never).
      warmup_fraction: warm-up length as a fraction of the total steps.
      warmup_factor: warm-up LR as a fraction of ``lr``.
      rho: RMSprop decay of the squared-gradient average.
      epsilon: RMSprop epsilon.
    """

    name: str
    paper: str
    optimizer: str = "sgd"
    lr: float = 0.1
    ref_batch: int = 128
    momentum: float = 0.9
    weight_decay: float = 1e-4
    depthwise_weight_decay: float = 0.0
    schedule: str = "steps"
    epochs: int | None = None
    total_steps: int | None = None
    boundaries: tuple[float, ...] = (0.5, 0.75)
    decay_factor: float = 0.1
    patience: int = 5
    epoch_decay: float = 0.98
    warmup_depth: int | None = None
    warmup_fraction: float = 0.0
    warmup_factor: float = 0.1
    rho: float = 0.9
    epsilon: float = 1e-7

    def __post_init__(self):
        self.validate()

    def replace(self, **changes) -> "Recipe":
        """A copy with ``changes``; unknown fields or bad values raise ValueError."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ValueError(f"Unknown recipe field(s) {', '.join(unknown)}; fields are "
                             f"{', '.join(sorted(fields))}. Received: {changes!r}")
        return dataclasses.replace(self, **changes)

    def validate(self):
        """Raises ValueError naming the first bad field."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. "
                             f"Received: optimizer={self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}. "
                             f"Received: schedule={self.schedule!r}")
        positive = {"lr": self.lr, "ref_batch": self.ref_batch,
                    "decay_factor": self.decay_factor, "epoch_decay": self.epoch_decay,
                    "warmup_factor": self.warmup_factor, "epsilon": self.epsilon}
        non_negative = {"momentum": self.momentum, "weight_decay": self.weight_decay,
                        "depthwise_weight_decay": self.depthwise_weight_decay,
                        "patience": self.patience, "warmup_fraction": self.warmup_fraction,
                        "rho": self.rho}
        for name, value in {**positive, **non_negative}.items():
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)
                    or (value <= 0 if name in positive else value < 0)):
                rule = "a number > 0" if name in positive else "a number >= 0"
                raise ValueError(f"{name} must be {rule}. Received: {name}={value!r}")
        for name in ("epochs", "total_steps", "warmup_depth"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None. "
                                 f"Received: {name}={value!r}")
        if self.epochs is None and self.total_steps is None:
            raise ValueError(f"recipe {self.name!r} needs epochs or total_steps. "
                             f"Received: epochs=None, total_steps=None")
        if not all(isinstance(b, (int, float)) and 0 < b < 1 for b in self.boundaries) or \
                list(self.boundaries) != sorted(self.boundaries):
            raise ValueError(f"boundaries must be increasing fractions of the total steps, "
                             f"each between 0 and 1. Received: boundaries={self.boundaries!r}")
        if not self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be below 1. "
                             f"Received: warmup_fraction={self.warmup_fraction!r}")

    def scaled_lr(self, global_batch: int) -> float:
        """The learning rate for ``global_batch`` images a step (linear scaling rule)."""
        return self.lr * global_batch / self.ref_batch

    def total_epochs(self, steps_per_epoch: int) -> int:
        """``epochs``, or enough epochs to run ``total_steps`` steps."""
        if self.epochs is not None:
            return self.epochs
        return math.ceil(self.total_steps / steps_per_epoch)


RECIPES: dict[str, Recipe] = {
    r.name: r for r in (
        Recipe(
            name="resnet_cifar",
            paper="He et al. 2016 Sec. 4.2: SGD 0.9, wd 1e-4, batch 128, LR 0.1 /10 at "
                  "32k and 48k iterations, stop at 64k; ResNet-110 warms up at 0.01 for "
                  "~400 iterations",
            lr=0.1, ref_batch=128, momentum=0.9, weight_decay=1e-4, schedule="steps",
            total_steps=64_000, boundaries=(0.5, 0.75), decay_factor=0.1,
            warmup_depth=110, warmup_fraction=400 / 64_000, warmup_factor=0.1),
        Recipe(
            name="resnet_imagenet",
            paper="He et al. 2016 Sec. 3.4: SGD 0.9, wd 1e-4, batch 256, LR 0.1 /10 when "
                  "the error plateaus, 60e4 iterations (~120 epochs)",
            lr=0.1, ref_batch=256, momentum=0.9, weight_decay=1e-4, schedule="plateau",
            epochs=120, decay_factor=0.1, patience=5),
        Recipe(
            name="alexnet",
            paper="Krizhevsky et al. 2012 Sec. 5: SGD 0.9, wd 5e-4, batch 128, LR 0.01 /10 "
                  "when the validation error stops improving, ~90 epochs",
            lr=0.01, ref_batch=128, momentum=0.9, weight_decay=5e-4, schedule="plateau",
            epochs=90, decay_factor=0.1, patience=5),
        Recipe(
            name="alexnet_bn",
            paper="AlexNet recipe with the 5x learning rate that BatchNorm allows "
                  "(Ioffe & Szegedy 2015 Sec. 4.2.1)",
            lr=0.05, ref_batch=128, momentum=0.9, weight_decay=5e-4, schedule="plateau",
            epochs=90, decay_factor=0.1, patience=5),
        Recipe(
            name="mobilenet",
            paper="Howard et al. 2017 Sec. 4: RMSprop, little or no weight decay on "
                  "depthwise filters; the paper gives no numbers, so these are the "
                  "TF-slim/Inception values it trained with: decay 0.9, momentum 0.9, "
                  "epsilon 1.0, LR 0.045 at batch 96 x 0.98 per epoch, wd 4e-5",
            optimizer="rmsprop", lr=0.045, ref_batch=96, momentum=0.9, rho=0.9,
            epsilon=1.0, weight_decay=4e-5, depthwise_weight_decay=0.0,
            schedule="exponential", epoch_decay=0.98, epochs=150),
    )
}


def get_recipe(name: str) -> Recipe:
    """The preset ``name``.

    Raises:
      ValueError: for an unknown name, with the closest names and all choices.
    """
    if not isinstance(name, str) or name not in RECIPES:
        close = difflib.get_close_matches(str(name), RECIPES, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"Unknown recipe {name!r}: {hint}choose one of "
                         f"{', '.join(sorted(RECIPES))}. Received: recipe={name!r}")
    return RECIPES[name]


# A short run: a few epochs on small data (the bundled digits), as the export job
# (``python -m export.tflite``) and ``export.compare --dataset`` train.
SHORT_RUN_RECIPE = {"schedule": "steps", "boundaries": (0.5, 0.75), "decay_factor": 0.1}
SHORT_RUN_BATCH_SIZE = 8    # per replica: ~180 steps an epoch on the 1,438 digits
SHORT_RUN_AUGMENT = "none"


def short_run_settings(recipe: str, *, epochs: int, batch_size: int = SHORT_RUN_BATCH_SIZE,
                       lr: float | None = None, augment: str = SHORT_RUN_AUGMENT,
                       seed: int = 0) -> dict:
    """``tfresnet.train.fit`` arguments for a short run (a few epochs on small data).

    The model's recipe (optimizer, momentum, weight decay) with ``SHORT_RUN_RECIPE``: the
    learning rate at the recipe's own rate (not scaled down to the small batch) and
    divided by 10 at 1/2 and 3/4 of the run, small batches (many steps, so BatchNorm's
    moving statistics settle), no augmentation. export.tflite and export.compare
    (``--dataset``) train with it.
    """
    return dict(epochs=epochs, batch_size=batch_size, lr=lr or get_recipe(recipe).lr,
                recipe=recipe, augment=augment, seed=seed,
                recipe_overrides=dict(SHORT_RUN_RECIPE))

"""The two phases of a transfer run as rules: how long each runs, how it trains, and why.

:func:`plan_phases` checks the phase settings and returns :class:`Phases` (their
lengths); :func:`head_rule` and :func:`fine_tune_rule` say how
:func:`tfresnet.training.fitting.fit_run` trains each phase (:class:`PhaseRule`); ``FLAG_HELP``
is what the transfer flags mean in every CLI that has them. The runs themselves are
:mod:`tfresnet.training.transfer_fit`'s; weights, freezing and the feature cache,
:mod:`tfresnet.training.transfer`'s.

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
import math
import numbers

ALL = "all"                      # unfreeze_from: every layer
DEFAULT_EPOCHS = 10
PHASE_DIRS = ("1_head", "2_fine_tune")  # each phase's run, inside the run directory
PHASES = ("head", "fine_tune")
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
    """How :func:`tfresnet.training.fitting.fit_run` trains one phase of a transfer run.

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
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs!r}")
    if freeze_epochs is not None and (
            isinstance(freeze_epochs, bool) or not isinstance(freeze_epochs, numbers.Integral)
            or freeze_epochs < 0):
        raise ValueError(f"freeze_epochs must be an integer >= 0. "
                         f"Received: freeze_epochs={freeze_epochs!r}")
    if freeze_epochs is not None and freeze_epochs > epochs:
        raise ValueError(f"`freeze_epochs` ({freeze_epochs}) is larger than `epochs` "
                         f"({epochs}): the frozen epochs are the first of all the epochs. "
                         f"Received: freeze_epochs={freeze_epochs}, epochs={epochs}")
    if fine_tune_lr is not None and (isinstance(fine_tune_lr, bool)
                                     or not isinstance(fine_tune_lr, (int, float))
                                     or not math.isfinite(fine_tune_lr) or fine_tune_lr <= 0):
        raise ValueError(f"fine_tune_lr must be a number > 0. "
                         f"Received: fine_tune_lr={fine_tune_lr!r}")
    if unfreeze_from is not None and (not isinstance(unfreeze_from, str) or not unfreeze_from):
        raise ValueError(f"unfreeze_from must be 'all', a stage or a layer name. "
                         f"Received: unfreeze_from={unfreeze_from!r}")
    fine_tune_epochs = epochs - (math.ceil(epochs / 2) if freeze_epochs is None
                                 else freeze_epochs)
    return Phases(int(epochs), None if freeze_epochs is None else int(freeze_epochs),
                  unfreeze_from or ALL, fine_tune_lr, int(fine_tune_epochs),
                  bool(fine_tune_batchnorm))

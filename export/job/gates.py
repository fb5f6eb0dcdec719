"""What the export decides from its held-out figures: the gates and the file to ship.

Every decision is sized to the number of images it saw, by one rule
(:mod:`tfresnet.utils.stats`: a one-sided exact binomial test, "clear" below
``stats.CLEAR_P_VALUE``, except the chance gate's stricter ``CHANCE_P_VALUE``):

* :func:`chance_check`: the float model must be clearly above chance (else nothing
  is written, exit status 1, unless ``--allow-chance``);
* :func:`agreement_check` (:func:`agreement_refusal`): the shipped INT8 file's top-1 agreement with its Keras
  model is refused only when it is clearly below ``--min-agreement`` for that many
  images (74 of 75 at 99% passes; 340 of 359 does not);
* :func:`choose_int8`: of the quantization-aware (QAT) and post-training (PTQ) INT8
  files, the one right on more held-out images ships (QAT on a tie);
  :func:`loss_warnings`: a WARNING with the figures when an INT8 file lost clearly to
  the other or to the float model (the exact McNemar test on the paired answers).
"""

from __future__ import annotations

import numpy as np

from tfresnet.utils import stats

AGREEMENT_TEST = ("one-sided exact binomial test: refused only when a file agreeing on "
                  "the required share of all images would agree this rarely")
PAIRED_TEST = "one-sided exact McNemar test on the images only one of the two got right"


class AgreementError(RuntimeError):
    """The shipped INT8 file disagrees with its Keras model clearly more than allowed."""


class ChanceError(RuntimeError):
    """The float model is no better than chance on the held-out images."""


def _pct(fraction) -> str:
    return f"{100 * fraction:.2f}%"


def chance_check(plan, correct, count):
    """(warning or None): the float model's held-out accuracy against chance.

    Chance is the majority-class share of the held-out images; the model passes when
    random guessing would reach its count of correct answers less than
    ``tfresnet.utils.stats.CHANCE_P_VALUE`` of the time (one-sided exact binomial test).

    Raises:
      ChanceError: when it does not pass and ``plan.config.allow_chance`` is False.
    """
    share = stats.majority_share(plan.split.val_labels())
    passed, p = stats.above_chance(correct, count, share)
    if passed:
        return None
    text = (f"the float model's held-out accuracy {100 * correct / max(count, 1):.2f}% "
            f"({correct} of {count}) is not above chance: the largest class holds "
            f"{100 * share:.2f}% of the held-out images, and a model answering at chance "
            f"gets {correct} or more right {100 * p:.1f}% of the time (one-sided binomial "
            f"test; below {100 * stats.CHANCE_P_VALUE:g}% required)")
    if not plan.config.allow_chance:
        raise ChanceError(
            f"{text}; nothing was written. Try more `epochs`, `weights` from a trained "
            f"backbone, more images a class, or a lower `lr`; allow_chance=True ships it "
            f"anyway")
    return f"at chance: {text}; shipped anyway (`allow_chance=True`)"


def agreement_check(agreeing: int, count: int, required: float) -> dict:
    """The agreement gate's test: ``agreeing`` of ``count`` images got the same top-1
    from the INT8 file as from its Keras model.

    The file fails (``"passed": False``) when a file that agreed on ``required`` of all
    images would agree on ``agreeing`` or fewer of ``count`` less than
    ``stats.CLEAR_P_VALUE`` of the time. ``required`` 1 fails any disagreement; 0
    never fails. Raise :func:`agreement_refusal` for a failed record.
    """
    p = stats.at_most(agreeing, count, required)
    return {"agreeing": agreeing, "images": count, "required": required, "p_value": p,
            "test": AGREEMENT_TEST, "passed": p >= stats.CLEAR_P_VALUE}


def agreement_refusal(record: dict, *, file: str, reference: str,
                      images: str = "held-out images") -> AgreementError:
    """The error of a failed :func:`agreement_check`: one line with the image count,
    the figures, the test, what to try and the flag that overrides it."""
    agreeing, count, required = record["agreeing"], record["images"], record["required"]
    share = agreeing / count if count else float("nan")
    return AgreementError(
        f"{file} agrees with the {reference} model on {agreeing} of {count} {images} "
        f"({_pct(share)}), clearly below min_agreement={required:g}: a file agreeing on "
        f"{100 * required:g}% would agree on {agreeing} or fewer only "
        f"{100 * record['p_value']:.2g}% of the time (one-sided exact binomial test; "
        f"below {100 * stats.CLEAR_P_VALUE:g}% refuses); nothing was written. Try more "
        f"`calibration` images, more `qat_epochs` or qat_epochs=0, `float_layers` for "
        f"the worst layers (debug_quantization=True names them); "
        f"min_agreement={np.floor(share * 100) / 100:g} ships it anyway")


def paired(a, b, truth) -> dict:
    """How two models answered the same images: ``a_only`` / ``b_only`` right, and the
    one-sided p-values that each is better (:func:`tfresnet.utils.stats.paired_p_value`)."""
    truth = np.asarray(truth)
    right_a, right_b = np.asarray(a.top1) == truth, np.asarray(b.top1) == truth
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    return {"a": a.label, "b": b.label, "a_correct": int(np.sum(right_a)),
            "b_correct": int(np.sum(right_b)), "a_only": a_only, "b_only": b_only,
            "p_a_better": stats.paired_p_value(b_only, a_only),
            "p_b_better": stats.paired_p_value(a_only, b_only), "test": PAIRED_TEST}


def choose_int8(by_kind: dict) -> str:
    """The kind of the INT8 file to ship: ``"ptq_int8"`` when the post-training file
    was right on more held-out images than the quantization-aware one, else ``"int8"``
    (QAT wins ties; without a PTQ baseline the INT8 file is the only one)."""
    qat, ptq = by_kind.get("int8"), by_kind.get("ptq_int8")
    return "ptq_int8" if ptq is not None and ptq.correct > qat.correct else "int8"


def loss_warnings(by_kind: dict, truth, count: int) -> tuple[list[str], list[dict]]:
    """(WARNING texts, the comparisons' records) for each INT8 file that lost clearly
    to the float Keras model, and for the QAT file when it lost clearly to the PTQ one."""
    pairs = [(by_kind["float32_keras"], by_kind[kind]) for kind in ("int8", "ptq_int8")
             if kind in by_kind]
    if "ptq_int8" in by_kind:
        pairs.append((by_kind["ptq_int8"], by_kind["int8"]))
    texts, records = [], []
    for better, worse in pairs:
        record = paired(better, worse, truth)
        records.append(record)
        p = record["p_a_better"]
        if p < stats.CLEAR_P_VALUE:
            texts.append(
                f"{worse.label} lost to {better.label}: {_pct(record['b_correct'] / count)} "
                f"vs {_pct(record['a_correct'] / count)} of {count} held-out images "
                f"({better.label} alone right on {record['a_only']}, {worse.label} alone "
                f"on {record['b_only']}; {PAIRED_TEST}: p = {p:.2g}, below "
                f"{stats.CLEAR_P_VALUE:g})")
    return texts, records

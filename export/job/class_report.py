"""Per-class figures of an export: accuracy per class, confusion matrices, their PNG.

The export (:mod:`export.job.pipeline`) keeps every model's top-1 answer on the held-out
images; from them and the true labels this module computes, per model, the accuracy
of each class (:func:`per_class_accuracy`: weighted by :func:`class_counts` it sums
back to the overall accuracy) and the confusion matrix, draws the float model's and
the shipped INT8 file's matrices side by side (:func:`confusion_png`), and names the
classes where the two differ by more than :data:`DIFFERENCE_POINTS`
(:func:`differing_classes`).
"""

from __future__ import annotations

import io

import numpy as np

# A class is named on the terminal when INT8 and float differ by more than this many
# percentage points on it (one image of the digits' 36 held-out per class is 2.8).
DIFFERENCE_POINTS = 5.0
# Above this many classes the PNG's cells carry no counts and its axes no names.
MAX_LABELLED_CLASSES = 30


def class_counts(truth, classes: int) -> list[int]:
    """Held-out images of each class."""
    return np.bincount(np.asarray(truth, int), minlength=classes)[:classes].tolist()


def per_class_accuracy(top1, truth, classes: int) -> list[float | None]:
    """The fraction of each class's images answered right (None for a class with none)."""
    top1, truth = np.asarray(top1, int), np.asarray(truth, int)
    result = []
    for c in range(classes):
        mine = truth == c
        result.append(float(np.mean(top1[mine] == c)) if mine.any() else None)
    return result


def confusion_matrix(top1, truth, classes: int) -> np.ndarray:
    """``[true class, answered class]`` image counts."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(top1, int)), 1)
    return matrix


def differing_classes(reference, other, labels, points: float = DIFFERENCE_POINTS):
    """``[(label, reference accuracy, other accuracy)]`` of the classes whose accuracy
    differs by more than ``points`` percentage points, the largest difference first."""
    found = [(label, a, b) for label, a, b in zip(labels, reference, other)
             if a is not None and b is not None and abs(a - b) * 100 > points]
    return sorted(found, key=lambda item: -abs(item[1] - item[2]))


def differing_text(found, reference_label: str, other_label: str,
                   points: float = DIFFERENCE_POINTS) -> str:
    """The terminal line naming the classes of :func:`differing_classes` ("" if none)."""
    if not found:
        return ""
    names = ", ".join(f"{label} ({100 * a:.1f}% -> {100 * b:.1f}%)" for label, a, b in found)
    return (f"Classes where {other_label} differs from {reference_label} by more than "
            f"{points:g} points: {names}")


def confusion_png(matrices: dict, labels) -> bytes:
    """The confusion matrices ``{title: matrix}`` side by side as PNG bytes: rows are
    the true classes, columns the answers, every cell with its count (up to
    :data:`MAX_LABELLED_CLASSES` classes, named on both axes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    classes = len(labels)
    named = classes <= MAX_LABELLED_CLASSES
    side = 1.2 + 0.42 * min(classes, MAX_LABELLED_CLASSES)
    fig, axes = plt.subplots(1, len(matrices), figsize=(side * len(matrices) + 1, side + 0.8),
                             squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items()):
        matrix = np.asarray(matrix)
        accuracy = np.trace(matrix) / max(matrix.sum(), 1)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
        ax.set_title(f"{title}\n{100 * accuracy:.2f}% of {int(matrix.sum())} images",
                     fontsize=10)
        ax.set_xlabel("answered class")
        ax.set_ylabel("true class")
        if named:
            ax.set_xticks(range(classes), [str(n) for n in labels], rotation=90, fontsize=8)
            ax.set_yticks(range(classes), [str(n) for n in labels], fontsize=8)
            high = matrix.max() / 2
            for (i, j), n in np.ndenumerate(matrix):
                if n:
                    ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                            color="white" if n > high else "black")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def class_figures(answers: dict, truth, labels, reference: str, shipped: str) -> dict:
    """Everything per class for one export.

    Args:
      answers: ``{model label: top-1 answers}`` on the held-out images, in table order.
      truth: the true classes; labels: the class names.
      reference, shipped: the two labels of ``answers`` to compare (the float Keras
        model and the shipped INT8 file).

    Returns:
      ``{"class_counts": {name: n}, "per_class_accuracy": {model label: {name: acc}},
      "differing": [(name, reference acc, shipped acc)], "text": terminal line or "",
      "png": the two confusion matrices side by side}``.
    """
    classes = len(labels)
    names = [str(n) for n in labels]
    accuracy = {label: per_class_accuracy(top1, truth, classes)
                for label, top1 in answers.items()}
    found = differing_classes(accuracy[reference], accuracy[shipped], names)
    matrices = {label: confusion_matrix(answers[label], truth, classes)
                for label in (reference, shipped)}
    return {"class_counts": dict(zip(names, class_counts(truth, classes))),
            "per_class_accuracy": {label: dict(zip(names, values))
                                   for label, values in accuracy.items()},
            "differing": found, "text": differing_text(found, reference, shipped),
            "png": confusion_png(matrices, names)}

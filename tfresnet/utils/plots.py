"""The experiments' figures, drawn the way the papers draw them, saved as PNG atomically.

* :func:`error_curves`: training error (thin) and validation error (bold) against
  iterations, one colour per depth, one panel per network kind (ResNet paper Fig. 1, 6).
* :func:`accuracy_curves`: validation accuracy against steps with a target line
  (BatchNorm paper Fig. 2).
* :func:`tradeoff`: accuracy against multiply-adds (log), one line per width
  multiplier, with latency against multiply-adds beside it (MobileNet paper Fig. 4, 5).

matplotlib runs on the Agg backend, so no display is needed.
"""

from __future__ import annotations

import math

from tfresnet.utils import fileio

COLOURS = ("tab:orange", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
THIN, BOLD = 0.9, 2.4


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path, dpi=110):
    """Writes ``fig`` to ``path`` as PNG (atomically) and closes it."""
    plt = pyplot()
    try:
        with fileio.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def error_curves(panels, path, *, title=None):
    """Training and validation error (%) against iterations, one panel per group.

    Args:
      panels: ``[(panel title, [(label, steps, train_error, val_error), ...]), ...]``;
        errors are fractions. Curves with the same position in each panel share a
        colour (e.g. depth 20 orange, depth 56 red in both panels).
      path: PNG file to write.
      title: figure title.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), sharey=True,
                             squeeze=False)
    top = max((max(c[2] + c[3]) for _, curves in panels for c in curves if c[1]),
              default=1.0)
    for ax, (panel_title, curves) in zip(axes[0], panels):
        for i, (label, steps, train, val) in enumerate(curves):
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(steps, [100 * e for e in train], color=colour, linewidth=THIN)
            ax.plot(steps, [100 * e for e in val], color=colour, linewidth=BOLD, label=label)
        ax.set_title(panel_title)
        ax.set_xlabel("iterations")
        ax.set_ylim(0, min(100, 100 * top * 1.05 + 1))
        ax.grid(True, alpha=0.3)
        ax.legend(title="bold: validation\nthin: training", fontsize=8, title_fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)


def accuracy_curves(curves, path, *, target=None, title=None):
    """Validation accuracy (%) against steps, one line per run, optional target line.

    Args:
      curves: ``[(label, steps, accuracy), ...]`` with accuracies as fractions.
      path: PNG file to write.
      target: accuracy (fraction) drawn as a dashed horizontal line.
      title: figure title.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (label, steps, accuracy) in enumerate(curves):
        ax.plot(steps, [100 * a for a in accuracy], color=COLOURS[(i + 2) % len(COLOURS)],
                linewidth=1.8, label=label)
    if target is not None:
        ax.axhline(100 * target, color="k", linestyle="--", linewidth=0.9,
                   label=f"target {100 * target:.1f}%")
    ax.set_xlabel("training steps")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)


def log_ticks(axis, low, high):
    """Plain-number ticks on a log axis, denser when the data span few decades."""
    from matplotlib import ticker
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    subs = ((1, 1.5, 2, 3, 4, 5, 7) if decades < 1 else (1, 2, 5) if decades < 3 else (1,))
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def tradeoff(series, path, *, across=(), right=None, title=None):
    """Accuracy (%) against multiply-adds (log x), one line per series; a second panel.

    Args:
      series: ``[(label, macs list, accuracy list, point labels), ...]``, e.g. one
        line per width multiplier through its resolutions.
      path: PNG file to write.
      across: ``[(label, macs list, accuracy list), ...]`` drawn as thin dashed grey
        lines, e.g. one per resolution through the width multipliers.
      right: optional second panel ``(ylabel, [(label, macs, values), ...])``, e.g.
        latency in ms against the same multiply-adds (log y).
      title: figure title.
    """
    from matplotlib import ticker
    plt = pyplot()
    fig, axes = plt.subplots(1, 2 if right else 1, figsize=(11 if right else 6.4, 4.4),
                             squeeze=False)
    ax = axes[0][0]
    for label, macs, accuracy in across:
        ax.plot([m / 1e6 for m in macs], [100 * a for a in accuracy], "--", color="0.6",
                linewidth=0.9)
        ax.annotate(label, (macs[-1] / 1e6, 100 * accuracy[-1]), fontsize=7, color="0.4",
                    xytext=(3, -9), textcoords="offset points")
    for i, (label, macs, accuracy, names) in enumerate(series):
        colour = COLOURS[(i + 2) % len(COLOURS)]
        ax.plot([m / 1e6 for m in macs], [100 * a for a in accuracy], "o-", color=colour,
                label=label)
        for m, a, name in zip(macs, accuracy, names):
            ax.annotate(name, (m / 1e6, 100 * a), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_ylabel("validation accuracy (%)")
    panels = [ax]
    if right:
        ylabel, lines = right
        ax2 = axes[0][1]
        for i, (label, macs, values) in enumerate(lines):
            ax2.plot([m / 1e6 for m in macs], values, "s-",
                     color=COLOURS[(i + 2) % len(COLOURS)], label=label)
        ax2.set_ylabel(ylabel)
        ax2.set_yscale("log")
        panels.append(ax2)
    plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    if right:  # label 1-2-5 steps: a range of a decade or less still gets labels
        axes[0][1].yaxis.set_major_locator(ticker.LogLocator(10, subs=(1.0, 2.0, 5.0)))
        axes[0][1].yaxis.set_minor_formatter(ticker.NullFormatter())
    for a in panels:
        a.set_xscale("log")
        a.set_xlabel("million multiply-adds (log)")
        a.xaxis.set_major_formatter(plain)
        a.xaxis.set_minor_formatter(ticker.NullFormatter())
        if a is not ax:
            a.yaxis.set_major_formatter(plain)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)

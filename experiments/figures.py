"""The new experiments' figures, drawn like the papers' (PNG, through ``tfresnet.utils.plots``).

* :func:`layer_lines`: one value per layer against the layer's depth, one line per
  network, plain nets dashed and ResNets solid (ResNet paper Fig. 7), optionally on a
  log scale; one panel per group (e.g. at initialization / after training).
* :func:`percentiles`: the 15th, 50th and 85th percentiles of one activation's input
  against training steps, one panel per run (BatchNorm paper Fig. 1 b, c).
"""

from __future__ import annotations

from tfresnet.utils import plots


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _style(label, i):
    colour = plots.COLOURS[i % len(plots.COLOURS)]
    return colour, "--" if "plain" in label.lower() else "-"


def layer_lines(panels, path, *, ylabel, xlabel="layer index", log=False, title=None,
                x_values=None):
    """Values per layer, one line per network, one panel per group.

    Args:
      panels: ``[(panel title, [(label, values), ...]), ...]``; a label containing
        "plain" is drawn dashed (the paper's plain nets), others solid.
      path: PNG file to write.
      ylabel, xlabel: axis labels.
      log: log-scale y axis.
      title: figure title.
      x_values: None for 1, 2, ... per line.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 3.3 * len(panels)),
                             squeeze=False)
    for ax, (panel_title, lines) in zip(axes[:, 0], panels):
        for i, (label, values) in enumerate(lines):
            colour, dash = _style(label, i)
            xs = x_values or range(1, len(values) + 1)
            ax.plot(list(xs)[:len(values)], values, dash, color=colour, linewidth=1.4,
                    label=label, marker=".", markersize=3)
        if log:
            ax.set_yscale("log")
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plots.save(fig, path)


def percentiles(panels, path, *, title=None):
    """15th / 50th / 85th percentiles against steps, one panel per run (BN Fig. 1 b, c).

    Args:
      panels: ``[(panel title, steps, p15, p50, p85), ...]``.
      path: PNG file to write.
      title: figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False)
    for ax, (panel_title, steps, p15, p50, p85) in zip(axes[0], panels):
        ax.fill_between(steps, p15, p85, color="tab:blue", alpha=0.15)
        ax.plot(steps, p85, color="tab:blue", linewidth=1.0, label="85th percentile")
        ax.plot(steps, p50, color="k", linewidth=1.6, label="median")
        ax.plot(steps, p15, color="tab:red", linewidth=1.0, label="15th percentile")
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("training steps")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("input to the activation")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plots.save(fig, path)

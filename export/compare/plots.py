"""export.compare's plots: one point per model, labelled, log x like the MobileNet paper's.

Saved with :func:`tfresnet.utils.plots.save` (PNG, written atomically).
"""

from __future__ import annotations

import os

from tfresnet.models.registry import model_info
from tfresnet.utils import plots

# --------------------------------------------------------------------------------------
# Plots (one point per model, labelled, log x like the MobileNet paper's figures).

def _family(row) -> str:
    return model_info(row["model"]).family


def _families(rows) -> dict:
    """``{family: the ModelInfo of its first row}`` (its ``plot_style``, ``family_label``)."""
    infos = {}
    for row in rows:
        infos.setdefault(_family(row), model_info(row["model"]))
    return infos


def _scatter(ax, rows, x_key, y_key, *, scale=1e-6, **style) -> list[tuple]:
    """One marker per row (colour and shape by family); returns (x, y, label) per point."""
    points = []
    for family, info in _families(rows).items():
        pts = [r for r in rows if _family(r) == family and r.get(y_key) is not None]
        if not pts:
            continue
        color, marker = info.plot_style
        ax.scatter([p[x_key] * scale for p in pts], [p[y_key] for p in pts],
                   **{"color": color, "marker": marker, "s": 36, "zorder": 3, **style})
        points += [(p[x_key] * scale, p[y_key], p["label"]) for p in pts]
    return points


# Label positions tried in turn (offset in points from the marker), first free one wins.
_LABEL_OFFSETS = ((5, 3), (5, -10), (-5, 3), (-5, -10), (0, 7), (0, -14), (9, -4), (-9, -4))


def _label_points(ax, points, obstacles=()):
    """Labels each point inside the axes where it overlaps no marker (of ``points`` or
    ``obstacles``) and no label placed before it."""
    renderer = ax.figure.canvas.get_renderer()
    markers = [(x, y) for x, y, *_ in list(points) + list(obstacles)]
    centres = ax.transData.transform(markers) if markers else []
    taken = [((cx - 7, cy - 7), (cx + 7, cy + 7)) for cx, cy in centres]
    frame = ax.get_window_extent(renderer)

    def free(box):
        inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                  and box.y1 <= frame.y1)
        return inside and not any(box.x0 < b[1][0] and box.x1 > b[0][0] and box.y0 < b[1][1]
                                  and box.y1 > b[0][1] for b in taken)

    for x, y, text in points:
        for dx, dy in _LABEL_OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                               fontsize=7, ha=ha, zorder=4)
            box = note.get_window_extent(renderer)
            if free(box) or (dx, dy) == _LABEL_OFFSETS[-1]:
                break
            note.remove()
        taken.append(((box.x0, box.y0), (box.x1, box.y1)))


def _legend(ax, rows, extra):
    import matplotlib.lines as mlines
    handles = [mlines.Line2D([], [], color=info.plot_style[0], marker=info.plot_style[1],
                             linestyle="", label=info.family_label or family)
               for family, info in _families(rows).items()]
    ax.legend(handles=handles + list(extra), fontsize=8, loc="best")


def _marker(text, **style):
    import matplotlib.lines as mlines
    return mlines.Line2D([], [], color="k", linestyle="", label=text,
                         **{"marker": "o", **style})


def _save(fig, ax, path, labels, *, title, xlabel, ylabel, logy=False, obstacles=()):
    """Log axes, titles, point labels (placed last, on the final layout), then
    :func:`tfresnet.utils.plots.save`."""
    ax.set_xscale("log")
    plots.log_ticks(ax.xaxis, *ax.dataLim.intervalx)
    if logy:
        ax.set_yscale("log")
        plots.log_ticks(ax.yaxis, *ax.dataLim.intervaly)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.1, y=0.08)  # room for the point labels
    fig.tight_layout()
    _label_points(ax, labels, obstacles)
    plots.save(fig, path, dpi=120)


def _latency_plot(rows, out, name, x_key, xlabel, threads) -> bool:
    plt = plots.pyplot()
    first, last = threads[0], threads[-1]
    if not any(r.get(f"int8_t{first}_median_ms") for r in rows):
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels = _scatter(ax, rows, x_key, f"int8_t{first}_median_ms")
    extra, hollow = [_marker(f"{first} thread{'s' if first > 1 else ''} (filled)")], []
    if last != first:
        hollow = _scatter(ax, rows, x_key, f"int8_t{last}_median_ms", facecolors="none",
                          linewidths=1.2)
        extra.append(_marker(f"{last} threads (hollow)", markerfacecolor="none"))
    _legend(ax, rows, extra)
    what = "MACs" if x_key == "macs" else "parameters"
    _save(fig, ax, os.path.join(out, name), labels, obstacles=hollow, logy=True, xlabel=xlabel,
          title=f"INT8 latency vs {what} (median; LiteRT + XNNPACK on this CPU)",
          ylabel="INT8 latency, ms (log)")
    return True


def _accuracy_plot(rows, out, name) -> bool:
    plt = plots.pyplot()
    measured = [r for r in rows if r["accuracy_float32"] is not None]
    pub = [dict(r, _y=r["top1_published"]) for r in rows if r["top1_published"] is not None]
    if not measured and not pub:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels, extra, obstacles = [], [], []
    if measured:
        dataset = measured[0]["accuracy_dataset"]
        f32 = [dict(r, _y=100 * r["accuracy_float32"]) for r in measured]
        labels = _scatter(ax, f32, "macs", "_y")
        extra.append(_marker(f"float32 TFLite, {dataset} (filled)"))
        int8 = [dict(r, _y=100 * r["accuracy_int8"]) for r in measured
                if r["accuracy_int8"] is not None]
        if int8:
            obstacles = _scatter(ax, int8, "macs", "_y", facecolors="none", linewidths=1.2)
            extra.append(_marker(f"INT8 TFLite, {dataset} (hollow)", markerfacecolor="none"))
    if pub:
        pub_points = _scatter(ax, pub, "macs", "_y", marker="*", s=90)
        labels, obstacles = (labels, obstacles + pub_points) if labels else (pub_points, [])
        sets = ", ".join(sorted({r["top1_published_dataset"] for r in pub}))
        extra.append(_marker(f"published top-1 ({sets})", marker="*", markersize=10))
    _legend(ax, measured + pub, extra)
    title = ("Top-1 accuracy vs multiply-adds" if measured else
             "Published top-1 accuracy vs multiply-adds (no accuracy measured: --quick)")
    _save(fig, ax, os.path.join(out, name), labels, obstacles=obstacles, title=title,
          xlabel="million multiply-adds (log)", ylabel="top-1 accuracy, %")
    return True


def write_plots(rows: list[dict], out: str, threads) -> list[str]:
    """PNG plots like the MobileNet paper's; returns their file names (in ``out``)."""
    written = []
    for name, x_key, xlabel in (("int8_latency_vs_macs.png", "macs",
                                 "million multiply-adds (log)"),
                                ("int8_latency_vs_params.png", "params",
                                 "million parameters (log)")):
        if _latency_plot(rows, out, name, x_key, xlabel, list(threads)):
            written.append(name)
    if _accuracy_plot(rows, out, "accuracy_vs_macs.png"):
        written.append("accuracy_vs_macs.png")
    return written

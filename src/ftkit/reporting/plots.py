"""The report's plots, each returned as a PNG data URI to embed in report.html.

Figures are built with `matplotlib.figure.Figure` and never through pyplot: pyplot keeps global
state and picks a GUI backend, while a bare Figure renders with Agg in any process (a notebook
calling `ftkit.fit`, a tuning worker thread) and needs no `plt.close`.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence

BLUE, ORANGE, GREEN, GRAY, RED = "#4C72B0", "#DD8452", "#55A868", "#8C8C8C", "#C44E52"
MAX_CONFUSION_LABELS = 40  # beyond this a matrix is unreadable; the per-class table says more


def _figure(width: float, height: float, cols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(1, cols)
    return fig, axes


def _uri(fig) -> str:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def learning_curves(train: list[dict], evals: list[dict], metric: str) -> str | None:
    """Loss per step (training batches, and train/validation at each evaluation) and the metric.

    train: metrics.jsonl training records {"step", "loss"}; evals: {"step", "validation": {...},
    "train": {...}} (the fixed training subset scored in eval mode, as summary.history holds)."""
    if not train and not evals:
        return None
    show_metric = metric != "loss" and any(metric in e.get("validation", {}) for e in evals)
    fig, axes = _figure(10 if show_metric else 6, 3.6, 2 if show_metric else 1)
    loss_ax = axes[0] if show_metric else axes
    if train:
        loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], color=BLUE, alpha=0.45,
                     lw=1, label="training batches")
    _eval_line(loss_ax, evals, "train", "loss", ORANGE, "train (eval mode)")
    _eval_line(loss_ax, evals, "validation", "loss", GREEN, "validation")
    loss_ax.set(title="loss", xlabel="step")
    loss_ax.legend(fontsize=8)
    if show_metric:
        _eval_line(axes[1], evals, "train", metric, ORANGE, "train (eval mode)")
        _eval_line(axes[1], evals, "validation", metric, GREEN, "validation")
        axes[1].set(title=metric, xlabel="step")
        axes[1].legend(fontsize=8)
    return _uri(fig)


def _eval_line(ax, evals: list[dict], split: str, key: str, color: str, label: str) -> None:
    points = [(e["step"], e[split][key]) for e in evals if key in e.get(split, {})]
    if points:
        ax.plot(*zip(*points), "o-", color=color, ms=4, label=label)


def lr_schedule(steps: Sequence[int], lrs: Sequence[float]) -> str | None:
    if len(steps) < 2:
        return None
    fig, ax = _figure(6, 3)
    ax.plot(steps, lrs, color=BLUE)
    ax.set(title="learning rate", xlabel="step")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return _uri(fig)


def confusion(matrix: list[list[int]], labels: list[str]) -> str | None:
    """Counts, coloured by the share of each true class (rows), so rare classes stay visible."""
    import numpy as np

    n = len(labels)
    if n < 2 or n > MAX_CONFUSION_LABELS:
        return None
    cm = np.asarray(matrix, dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    side = min(9.0, 2.5 + 0.45 * n)
    fig, ax = _figure(side + 1, side)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    return _uri(fig)


def per_class(scores: dict[str, dict]) -> str | None:
    """Precision, recall and F1 per class (or entity type), one group of bars each."""
    import numpy as np

    names = list(scores)
    if not names:
        return None
    y = np.arange(len(names))
    fig, ax = _figure(7, min(12.0, 1.2 + 0.45 * len(names) * 1.5))
    for k, (key, color) in enumerate((("precision", BLUE), ("recall", ORANGE), ("f1", GREEN))):
        ax.barh(y + (k - 1) * 0.27, [scores[n].get(key, 0.0) for n in names], height=0.27, color=color, label=key)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), title="per-class scores (test)")
    ax.legend(fontsize=8, loc="lower right")
    return _uri(fig)


def reliability(bins: list[dict], ece: float | None) -> str | None:
    """Reliability diagram: accuracy vs mean confidence per bin; the diagonal is perfect calibration."""
    if not bins:
        return None
    fig, ax = _figure(4.6, 4.2)
    ax.plot([0, 1], [0, 1], "--", color=GRAY, lw=1, label="perfect calibration")
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    widths = [b["upper"] - b["lower"] for b in bins]
    ax.bar(centers, [b["accuracy"] for b in bins], width=widths, color=BLUE, alpha=0.7, edgecolor="white",
           label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color=ORANGE, ms=4,
            label="mean confidence")
    title = "reliability (test)" + (f", ECE {ece:.3f}" if ece is not None else "")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return _uri(fig)


def bars(panels: list[tuple[str, list[str], list[float | None]]], *, highlight: str | None = None,
         xlim_from_data: bool = False) -> str | None:
    """Side-by-side horizontal bar panels sharing the names: [(title, names, values)]."""
    panels = [p for p in panels if any(v is not None for v in p[2])]
    if not panels:
        return None
    n = max(len(p[1]) for p in panels)
    fig, axes = _figure(min(4.2 * len(panels), 13), 1.3 + 0.38 * n, len(panels))
    axes = axes if len(panels) > 1 else [axes]
    for ax, (title, names, values) in zip(axes, panels):
        shown = [0.0 if v is None else float(v) for v in values]
        ax.barh(names, shown, color=[ORANGE if name == highlight else BLUE for name in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.invert_yaxis()
        if xlim_from_data and 0 <= min(shown) and max(shown) <= 1:
            ax.set_xlim(max(0.0, min(shown) - 0.1), 1.0)
    return _uri(fig)


def retention(before: float, after: float, measure: str) -> str:
    fig, ax = _figure(4.6, 2.6)
    ax.barh(["before fine-tuning", "after fine-tuning"], [before, after], color=[GRAY, BLUE])
    for y, value in enumerate((before, after)):
        ax.text(value, y, f" {value:.3f}", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_title(f"retention: {measure}", fontsize=10)
    ax.set_xlim(0, max(1.0, before, after) * 1.15)
    return _uri(fig)


def spread(names: list[str], values: list[float], metric: str) -> str | None:
    """Cross-validation folds or seeds: each run's test score and their mean."""
    if not values:
        return None
    fig, ax = _figure(6, 1.3 + 0.35 * len(names))
    mean = sum(values) / len(values)
    ax.plot(values, names, "o", color=BLUE, ms=7)
    ax.axvline(mean, color=ORANGE, lw=1.5, label=f"mean {mean:.4f}")
    ax.invert_yaxis()
    ax.set(title=f"test {metric} per run", xlabel=metric)
    ax.legend(fontsize=8)
    return _uri(fig)


def trials(rows: list[dict], metric: str, maximize: bool) -> str | None:
    """Validation score per trial (pruned ones at their last reported score) and the best so far."""
    done = [(r["trial"], r["value"]) for r in rows if r.get("state") == "complete" and r.get("value") is not None]
    pruned = [(r["trial"], r["last_reported"]) for r in rows
              if r.get("state") == "pruned" and r.get("last_reported") is not None]
    if not done and not pruned:
        return None
    fig, ax = _figure(7, 3.8)
    if done:
        ax.plot(*zip(*done), "o", color=BLUE, label="complete")
        best, running = [], None
        for _, value in done:
            running = value if running is None else (max if maximize else min)(running, value)
            best.append(running)
        ax.step([t for t, _ in done], best, where="post", color=ORANGE, label="best so far")
    if pruned:
        ax.plot(*zip(*pruned), "x", color=GRAY, label="pruned (last score)")
    ax.set(xlabel="trial", ylabel=f"validation {metric}", title="trials")
    ax.legend(fontsize=8)
    return _uri(fig)

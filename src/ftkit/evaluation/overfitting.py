"""Train vs validation over a run, and a plain-language verdict on overfitting.

Each history record holds the validation metrics and the same metrics on a fixed subset of the
training data, both measured in eval mode (no dropout), so the two are comparable.
"""
from __future__ import annotations

from ftkit.evaluation.metrics import DIRECTION

REMEDIES = ("fewer epochs, more weight decay or dropout (--set model.dropout=0.2), label smoothing "
            "(--set train.label_smoothing=0.1), L2-SP (--set train.l2sp=0.01), freezing lower layers "
            "(--strategy freeze-bottom), or more data")
LARGE_GAP = 0.10  # 10 points of accuracy / F1 between train and validation
SMALL_GAP = 0.05  # below this a train/validation gap is what any fit shows


def diagnose(history: list[dict], metric: str, stopped_early: bool) -> dict:
    usable = [h for h in history if "train" in h and "validation" in h]
    if not usable:
        return {"verdict": "not measured: no validation data (keep data.validation_size > 0 or pass --validation)"}
    higher = DIRECTION.get(metric, True)
    scores = [h["validation"][metric] for h in usable]
    best_i = scores.index(max(scores) if higher else min(scores))
    best, last = usable[best_i], usable[-1]
    rising = _loss_rising(usable)
    gap = round(_gap(best, metric, higher), 4)  # 1.0 - 0.9 is 0.0999...: a 10-point gap is 10 points
    out = {"metric": metric, "best": _point(best, metric, higher), "last": _point(last, metric, higher),
           "best_epoch": best["epoch"], "early_stopping_fired": stopped_early,
           "validation_loss_rising_for": rising}
    out["verdict"] = _verdict(rising, gap, best_i == len(usable) - 1, stopped_early, metric, best["epoch"])
    return out


def _point(record: dict, metric: str, higher: bool) -> dict:
    return {"epoch": record["epoch"], "step": record["step"],
            "train_loss": record["train"]["loss"], "validation_loss": record["validation"]["loss"],
            f"train_{metric}": record["train"][metric], f"validation_{metric}": record["validation"][metric],
            "gap": round(_gap(record, metric, higher), 4)}


def _gap(record: dict, metric: str, higher: bool) -> float:
    train, val = record["train"][metric], record["validation"][metric]
    return train - val if higher else val - train


def _loss_rising(history: list[dict]) -> int:
    """Evaluations at the end during which validation loss rose while training loss fell."""
    count = 0
    for prev, cur in zip(history[::-1][1:], history[::-1]):
        if cur["validation"]["loss"] > prev["validation"]["loss"] and cur["train"]["loss"] < prev["train"]["loss"]:
            count += 1
        else:
            break
    return count


def _verdict(rising: int, gap: float, best_is_last: bool, stopped: bool, metric: str, epoch: float) -> str:
    if rising >= 2:
        return (f"overfitting: validation loss rose for {rising} evaluations while training loss fell; "
                f"the weights of epoch {epoch:g} (best validation {metric}) were kept. Try {REMEDIES}")
    if metric != "loss" and gap >= LARGE_GAP:
        return (f"overfitting: at the best epoch training {metric} is {100 * gap:.1f} points better "
                f"than validation. Try {REMEDIES}")
    if best_is_last and not stopped:
        return (f"still improving: validation {metric} was best at the last evaluation; "
                "more epochs (--epochs) may help")
    if metric != "loss" and gap >= SMALL_GAP:
        return (f"a mild gap: at the best epoch training {metric} is {100 * gap:.1f} points better than "
                "validation, with validation loss not rising; watch it if it grows (more data or "
                "--set train.label_smoothing=0.1 narrow it)")
    return (f"no sign of overfitting: train and validation {metric} differ by {100 * abs(gap):.1f} points "
            "at the best epoch")

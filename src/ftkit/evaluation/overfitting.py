"""Train vs validation over a run, and a plain-language verdict on overfitting.

Each history record holds the validation metrics and the same metrics on a fixed subset of the
training data, both measured in eval mode (no dropout), so the two are comparable.
"""
from __future__ import annotations

from ftkit.evaluation.metrics import DIRECTION, UNITS

REMEDIES = ("fewer epochs, more weight decay or dropout (--set model.dropout=0.2), label smoothing "
            "(--set train.label_smoothing=0.1), L2-SP (--set train.l2sp=0.01), freezing lower layers "
            "(--strategy freeze-bottom), or more data")
# A metric in the target's units is a regression's: it has no labels to smooth
UNIT_REMEDIES = REMEDIES.replace("label smoothing (--set train.label_smoothing=0.1), ", "")
LARGE_GAP = 0.10  # 10 points of accuracy / F1 between train and validation
SMALL_GAP = 0.05  # below this a train/validation gap is what any fit shows
# Error metrics in the target's units (rmse, mae): the gap is train's error as a share below
# validation's, and ordinary fits show more of it than of accuracy points.
UNIT_GAPS = (0.30, 0.15)  # (large, small)


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
    """How much better train scores than validation: points of a 0..1 score, or for a metric in the
    target's units (rmse, mae) the share of the validation value (0.10: train's error 10% lower)."""
    train, val = record["train"][metric], record["validation"][metric]
    if train is None or val is None:  # a correlation of constant predictions is undefined
        return 0.0
    gap = train - val if higher else val - train
    return gap / abs(val) if metric in UNITS and val else gap


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
                f"the weights of epoch {epoch:g} (best validation {metric}) were kept. Try {_remedies(metric)}")
    large, small = UNIT_GAPS if metric in UNITS else (LARGE_GAP, SMALL_GAP)
    if metric != "loss" and gap >= large:
        return (f"overfitting: at the best epoch training {metric} is {_amount(gap, metric)} "
                f"than validation. Try {_remedies(metric)}")
    if best_is_last and not stopped:
        return (f"still improving: validation {metric} was best at the last evaluation; "
                "more epochs (--epochs) may help")
    if metric != "loss" and gap >= small:
        return (f"a mild gap: at the best epoch training {metric} is {_amount(gap, metric)} than "
                "validation, with validation loss not rising; watch it if it grows (more data"
                f"{'' if metric in UNITS else ' or --set train.label_smoothing=0.1'} can narrow it)")
    differ = f"{100 * abs(gap):.1f}%" if metric in UNITS else f"{100 * abs(gap):.1f} points"
    return f"no sign of overfitting: train and validation {metric} differ by {differ} at the best epoch"


def _remedies(metric: str) -> str:
    return UNIT_REMEDIES if metric in UNITS else REMEDIES


def _amount(gap: float, metric: str) -> str:
    return f"{100 * gap:.1f}% lower (better)" if metric in UNITS else f"{100 * gap:.1f} points better"

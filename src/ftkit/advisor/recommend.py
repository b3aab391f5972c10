"""The advice rules, in one place: should this data be fine-tuned, and how.

`recommend` takes plain facts (counts, per-strategy estimates, budget, the probe's accuracy) and
returns a decision with its reasons, so the rules can be read and tested without any model.
"""
from __future__ import annotations

from typing import Optional

# Fewer labelled examples than this in some class: no validation split can measure that class
# and any training memorises it. The honest advice is to label more data first.
MIN_PER_CLASS = 5
# Under this many training examples per class, updating a whole pretrained network mostly
# overfits; a linear head on frozen features is the robust choice (few-shot transfer results).
PROBE_ONLY_PER_CLASS = 50
# From this many examples per class, updating every layer pays off (full fine-tuning is the
# strongest in-distribution); below it LP-FT distorts the pretrained features less (Kumar et al. 2022).
PLENTY_PER_CLASS = 500
# A strategy whose measured peak is above this share of the available memory is not advised:
# peaks vary with batch shapes, and the OS and other processes need room too.
MEMORY_HEADROOM = 0.85
PLENTY_ORDER = ("full", "lp-ft", "lora", "linear-probe")
MODERATE_ORDER = ("lp-ft", "lora", "full", "linear-probe")
# Speech recognition starts from a model that already transcribes: with few clips, adapting only
# the decoder (vocabulary, spelling, style) on cached encoder outputs is cheap and overfits least;
# with hours of audio (~2,000 clips and up) the encoder can adapt to the voices and channel too.
SPEECH_PLENTY_CLIPS = 2000
SPEECH_PLENTY_ORDER = ("full", "lora", "frozen-encoder")
SPEECH_FEW_ORDER = ("frozen-encoder", "lora", "full")


def recommend(facts: dict, strategies: dict, *, budget: Optional[float] = None,
              target_metric: Optional[float] = None, probe_accuracy: Optional[float] = None,
              memory_mb: Optional[float] = None) -> dict:
    """-> {"action": "fine-tune" | "linear-probe" | "don't fine-tune", "strategy", "epochs",
    "reasons": [...], "fits": {strategy: why or "fits"}}.

    facts: n_train, n_classes, min_class_count (None when unknown), epochs (configured), encoder_cache
    (the task declares it: speech recognition's rules apply).
    strategies: name -> {"total_seconds", "peak_memory_mb", "max_epochs" (within the budget)}.
    """
    reasons: list[str] = []
    per_class = facts["n_train"] / max(facts["n_classes"], 1)
    fits = {name: _fits(est, budget, memory_mb) for name, est in strategies.items()}
    if facts.get("encoder_cache"):  # a pretrained transcriber: the frozen encoder's outputs can be cached
        return _speech(facts, strategies, fits, budget, reasons)
    if facts.get("min_class_count") is not None and facts["min_class_count"] < MIN_PER_CLASS:
        reasons.append(f"a class has only {facts['min_class_count']} training examples (< {MIN_PER_CLASS}): "
                       "label more data before training anything")
        return _decision("don't fine-tune", None, None, reasons, fits)
    if probe_accuracy is not None and target_metric is not None:
        if probe_accuracy >= target_metric:
            reasons.append(f"a linear probe on the frozen features already reaches {probe_accuracy:.3f} "
                           f">= the target {target_metric:g}: fine-tuning the body is not needed")
            return _decision("linear-probe", "linear-probe", facts["epochs"], reasons, fits)
        reasons.append(f"the linear probe reaches {probe_accuracy:.3f} < the target {target_metric:g}: "
                       "the body needs to adapt")
    if per_class < PROBE_ONLY_PER_CLASS:
        reasons.append(f"{per_class:.0f} training examples per class (< {PROBE_ONLY_PER_CLASS}): fine-tuning "
                       "every layer would mostly overfit; train a head on frozen features")
        return _decision("linear-probe", "linear-probe", facts["epochs"], reasons, fits)
    order = PLENTY_ORDER if per_class >= PLENTY_PER_CLASS else MODERATE_ORDER
    reasons.append(f"{per_class:.0f} training examples per class: "
                   + ("enough to update every layer" if order is PLENTY_ORDER else
                      f"fewer than {PLENTY_PER_CLASS}, so LP-FT (head first) distorts the pretrained features least"))
    if order[0] not in strategies:
        reasons.append(f"{order[0]} was not estimated (add it to --strategies)")
    return _choose([n for n in order if n in strategies], strategies, fits, facts, budget, reasons)


def _speech(facts: dict, strategies: dict, fits: dict, budget, reasons: list) -> dict:
    n = facts["n_train"]
    plenty = n >= SPEECH_PLENTY_CLIPS
    order = SPEECH_PLENTY_ORDER if plenty else SPEECH_FEW_ORDER
    reasons.append(f"{n} training clips: " + ("enough audio to adapt the encoder to the voices and channel" if plenty
                                              else f"fewer than {SPEECH_PLENTY_CLIPS}, so the decoder adapts on the "
                                              "frozen encoder's cached outputs (cheapest, overfits least)"))
    usable = [name for name in order if name in strategies]
    if not usable:
        reasons.append(f"none of {', '.join(order)} was estimated (add them to --strategies)")
        return _decision("don't fine-tune", None, None, reasons, fits)
    if usable[0] != order[0]:
        reasons.append(f"{order[0]} was not estimated (add it to --strategies)")
    return _choose(usable, strategies, fits, facts, budget, reasons)


def _choose(order: list[str], strategies: dict, fits: dict, facts: dict, budget, reasons: list) -> dict:
    """The first preferred fine-tuning strategy that fits; else the first that fits with fewer
    epochs (the body still adapts); else the linear probe; else nothing."""
    tuned = [n for n in order if n != "linear-probe"]
    for name in tuned:
        if fits[name] == "fits":
            if name != order[0]:
                reasons.append(f"{order[0]} {fits[order[0]]}")
            reasons += _within(name, strategies, budget)
            return _decision("fine-tune", name, facts["epochs"], reasons, fits)
    for name in tuned:
        est = strategies[name]
        if fits[name].startswith("over budget") and (est.get("max_epochs") or 0) >= 1:
            reasons.append(f"no fine-tuning strategy fits the {_minutes(budget)} budget with {facts['epochs']:g} "
                           f"epochs; {name} fits with {est['max_epochs']:g}")
            if fits.get("linear-probe") == "fits":
                reasons.append(f"cheaper: linear-probe (~{_minutes(strategies['linear-probe']['total_seconds'])})")
            return _decision("fine-tune", name, est["max_epochs"], reasons, fits)
    if fits.get("linear-probe") == "fits":
        reasons += [f"{name} {fits[name]}" for name in tuned[:1]] + _within("linear-probe", strategies, budget)
        return _decision("linear-probe", "linear-probe", facts["epochs"], reasons, fits)
    reasons.append("no strategy fits " + ("the budget or " if budget is not None else "") + "the memory: "
                   "raise --budget, or cut the input size (--set data.max_length / data.image_size) or batch size")
    return _decision("don't fine-tune", None, None, reasons, fits)


def _within(name: str, strategies: dict, budget) -> list[str]:
    if budget is None:
        return []
    return [f"{name}: an estimated {_minutes(strategies[name]['total_seconds'])} within the {_minutes(budget)} budget"]


def _fits(est: dict, budget: Optional[float], memory_mb: Optional[float]) -> str:
    if memory_mb is not None and est.get("peak_memory_mb") and est["peak_memory_mb"] > MEMORY_HEADROOM * memory_mb:
        return f"needs ~{est['peak_memory_mb']:.0f} MB, more than {MEMORY_HEADROOM:.0%} of the {memory_mb:.0f} MB available"
    if budget is not None and est["total_seconds"] > budget:
        return f"over budget (~{_minutes(est['total_seconds'])} > {_minutes(budget)})"
    return "fits"


def _decision(action: str, strategy: Optional[str], epochs, reasons: list, fits: dict) -> dict:
    return {"action": action, "strategy": strategy, "epochs": epochs, "reasons": reasons, "fits": fits}


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

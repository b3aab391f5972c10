"""Predictions for new inputs from a finished run, as a table to print or save."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ftkit.data.readers import read_table
from ftkit.io import atomic_path


def predict_frame(run, data: Optional[str], texts: Optional[list[str]], text_column: Optional[str]) -> pd.DataFrame:
    """The input's own columns (so results join back) plus predicted, score, prob_<label>."""
    from ftkit.tasks.text_classification import TextExamples, examples_from

    predictor = run.predictor
    if data is not None:
        table = read_table(data)
        examples = examples_from(table, text_column or predictor.meta["text_column"], None, drop_empty=False)
        base = table.frame.reset_index(drop=True)
    else:
        examples = TextExamples(list(texts), None, "--text", list(range(1, len(texts) + 1)))
        base = pd.DataFrame({"text": examples.texts})
    probs = predictor.predict_proba(examples)
    scored = predictor.frame(examples, probs).drop(columns=["row", "text"])
    return pd.concat([base, scored.reset_index(drop=True)], axis=1)


def write_predictions(frame: pd.DataFrame, out: Path) -> None:
    """CSV or JSONL by extension, written to a temporary name first (never half-written)."""
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(tmp, index=False)

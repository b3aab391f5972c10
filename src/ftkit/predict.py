"""Predictions for new inputs from a finished run, as a table to print or save."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ftkit.io import atomic_path


def predict_frame(run, data: Optional[str], texts: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
    """The task's predictions as a table (text: the input's own columns plus predicted, score,
    prob_<label>; NER: tokens, predicted tags and entity spans)."""
    return run.predictor.predict_frame(data, texts, column)


def write_predictions(frame: pd.DataFrame, out: Path) -> None:
    """CSV or JSONL by extension, written to a temporary name first (never half-written)."""
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(tmp, index=False)

"""What the data doctor's checks share: a Finding (one check's verdict), the Context a check reads
(the splits as Parts, with their input keys and near-duplicate pairs), the CHECKS registry and
the Report. doctor.py runs the checks; doctor_checks.py, doctor_schema.py and label_noise.py
are the checks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Callable, Optional

from ftkit.data import near_dup
from ftkit.registry import Registry

SEVERITIES = ("ok", "warn", "error", "skipped")
SHOWN = 5  # example rows per check in the table (doctor.json lists all)
AUDIO_KINDS = ("audio", "asr")  # audio classification, speech recognition (labels = transcripts)


@dataclass
class Options:
    near_threshold: float = 0.8  # Jaccard of word bigrams (text) for a near-duplicate pair
    label_noise: bool = True
    folds: int = 5  # out-of-fold probabilities for label noise
    listed: int = 20  # label-noise candidates shown in the table


@dataclass
class Finding:
    name: str
    severity: str  # ok | warn | error | skipped
    count: int
    message: str  # what was found, one line
    fix: str = ""
    examples: list[dict] = field(default_factory=list)  # refs: {"split", "row", "where"}
    details: list = field(default_factory=list)  # everything, for doctor.json

    def __post_init__(self):
        assert self.severity in SEVERITIES, self.severity


@dataclass
class Part:
    """One split as the checks see it: an input key per row (text, image or audio path) and a
    label (speech recognition: the transcript)."""

    split: str
    kind: str  # "text" | "image" | "ner" | "audio" | "asr"
    inputs: list[str]
    labels: Optional[list[str]]
    examples: Any  # the task's examples (rows, where)

    def ref(self, i: int) -> dict:
        return {"split": self.split, "row": self.examples.rows[i], "where": self.examples.where(i)}

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass
class Context:
    task: str
    parts: list[Part]
    labels: list[str]  # class names (NER: tags)
    cfg: Any  # FitConfig
    options: Options
    tokenizer: Any = None  # lengths in tokens when given, else estimated from words
    problems: list[Finding] = field(default_factory=list)  # raw-file findings (ftkit doctor)
    scanned: bool = False  # the raw files were scanned (skipped rows are among `problems`)
    record: dict = field(default_factory=dict)  # splits.record
    reader: Any = None  # the Task (tasks.base.Task) that read the splits; label noise builds and encodes through it
    label_sets: bool = False  # each row's label is a tuple of labels (multi-label): counted per label
    numeric_target: bool = False  # each row's label is a number (regression): no classes to count

    @cached_property
    def index(self) -> list[tuple[Part, int]]:
        """Global position -> (part, row in part), over all splits concatenated."""
        return [(p, i) for p in self.parts for i in range(len(p))]

    def ref(self, g: int) -> dict:
        part, i = self.index[g]
        return part.ref(i)

    @cached_property
    def keys(self):
        inputs = [x for p in self.parts for x in p.inputs]
        if self.kind in AUDIO_KINDS:
            return near_dup.audio_keys(inputs)
        return near_dup.image_keys(inputs) if self.kind == "image" else near_dup.text_keys(inputs)

    @cached_property
    def near_pairs(self) -> list[tuple[int, int, float]]:
        if self.kind in AUDIO_KINDS:
            return []  # not checked: the near checks say so
        if self.kind == "image":
            return near_dup.near_image_pairs(self.keys.near)
        return near_dup.near_text_pairs(self.keys.near, self.options.near_threshold, self.cfg.seed + 1)

    @property
    def kind(self) -> str:
        return self.parts[0].kind

    def label(self, g: int) -> Optional[str]:
        part, i = self.index[g]
        return None if part.labels is None else part.labels[i]


CHECKS: Registry[Callable[[Context], Finding]] = Registry("doctor check")
FAST = ("schema", "duplicates", "near-duplicates", "leakage", "near-leakage", "conflicts", "imbalance", "outliers")
FULL = FAST + ("label-noise",)


@dataclass
class Report:
    checks: list[Finding]
    summary: dict

    def get(self, name: str) -> Optional[Finding]:
        return next((f for f in self.checks if f.name == name), None)

    def to_dict(self) -> dict:
        return {"checks": [asdict(f) for f in self.checks], "summary": self.summary}

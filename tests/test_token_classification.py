"""NER: readers and their errors, sub-word alignment, windows for long sentences, seqeval
metrics, entity spans, and a tiny model end to end (saved run predicts like the live one)."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from ftkit.errors import DataError
from ftkit.tasks.token_classification import (IGNORE, Sentences, encode, entities, ner_metrics, read_sentences,
                                              split_words, tag_scheme)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "john", "lives", "in", "new", "york", "un", "##believ",
         "##able", "play", "##ing", "##s", "."]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import BertTokenizerFast
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)})


def test_conll_reader_handles_tabs_spaces_docstart_and_extra_columns(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- -X- O O\n\nJohn NNP B-NP B-PER\nlives VBZ B-VP O\n\n\nParis NNP B-NP B-LOC\n")
    s = read_sentences(str(path))
    assert s.tokens == [["John", "lives"], ["Paris"]] and s.tags == [["B-PER", "O"], ["B-LOC"]]
    assert s.rows == [3, 7]
    tabbed = tmp_path / "b.conll"
    tabbed.write_text("New\tB-LOC\nYork\tI-LOC\n")
    assert read_sentences(str(tabbed)).tags == [["B-LOC", "I-LOC"]]


def test_reader_errors_name_file_and_line(tmp_path):
    ragged = tmp_path / "ragged.conll"
    ragged.write_text("John\tB-PER\nlives\n")
    with pytest.raises(DataError, match=r"ragged.conll line 2: 1 fields"):
        read_sentences(str(ragged))
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"tokens": ["a", "b"], "tags": ["O", "O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(DataError, match=r"x.jsonl line 2: 2 tokens but 1 tags"):
        read_sentences(str(jsonl))
    bad = tmp_path / "scheme.conll"
    bad.write_text("John\tB-PER\n\nParis\tLOC\n")
    with pytest.raises(DataError, match=r"scheme.conll line 3: tag 'LOC' is not in a BIO or BIOES scheme"):
        tag_scheme(read_sentences(str(bad)))
    assert tag_scheme(Sentences([["a", "b"]], [["S-PER", "O"]], "f", [1])) == "BIOES"


def test_first_subtoken_carries_the_tag(tokenizer):
    sentence = Sentences([["John", "unbelievable", "playing"]], [["B-PER", "B-MISC", "O"]], "f", [1])
    labels = ["O", "B-MISC", "I-MISC", "B-PER"]
    enc = encode(sentence, tokenizer, 32, 8, labels)
    pieces = tokenizer.convert_ids_to_tokens(enc.ids[0].tolist())
    assert pieces == ["[CLS]", "john", "un", "##believ", "##able", "play", "##ing", "[SEP]"]
    assert enc.labels[0].tolist() == [IGNORE, 3, 1, IGNORE, IGNORE, 0, IGNORE, IGNORE]
    assert enc.words[0].tolist() == [-1, 0, 1, -1, -1, 2, -1, -1]
    every = encode(sentence, tokenizer, 32, 8, labels, label_all=True)
    assert every.labels[0].tolist() == [IGNORE, 3, 1, 2, 2, 0, 0, IGNORE]  # B- continues as I-


def test_long_sentences_are_windowed_not_truncated(tokenizer):
    words = ["john", "lives", "in", "new", "york", "."] * 6  # 36 words, 36 sub-tokens
    tags = ["B-PER", "O", "O", "B-LOC", "I-LOC", "O"] * 6
    enc = encode(Sentences([words], [tags], "f", [1]), tokenizer, 16, 4, ["O", "B-LOC", "I-LOC", "B-PER"])
    assert len(enc) > 2 and (enc.sentence == 0).all() and enc.lengths.max() <= 16
    covered = set(np.concatenate([w[w >= 0] for w in enc.words]).tolist())
    assert covered == set(range(36))  # every word is labelled in some window


def test_seqeval_numbers_on_a_hand_made_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "B-PER"]]
    m = ner_metrics(gold, pred, "BIO", 0.5)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_type"]["PER"]["precision"] == pytest.approx(0.5) and m["per_type"]["LOC"]["recall"] == 0.5


def test_entity_spans_carry_token_and_character_offsets():
    tokens, starts = split_words("Ask @john about New York, now")
    assert tokens == ["Ask", "@john", "about", "New", "York", ",", "now"]
    spans = entities(tokens, ["O", "B-PER", "O", "B-LOC", "I-LOC", "O", "O"], starts=starts)
    assert spans[1] == {"text": "New York", "type": "LOC", "start_token": 3, "end_token": 5,
                        "start_char": 16, "end_char": 24}
    assert spans[0]["start_char"] == 4 and spans[0]["end_char"] == 9


@pytest.mark.precision
def test_ner_end_to_end_and_the_saved_run_predicts_the_same(tiny_model, ner, tmp_path):
    out = tmp_path / "ner"
    result = run_cli("fit", "--task", "token-classification", "--model", tiny_model, "--train", ner["train"],
                     "--test", ner["test"], "--out", out, "--epochs", "4", "--batch-size", "8", "--lr", "3e-3",
                     "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    test = summary["metrics"]["test"]
    assert {"f1", "precision", "recall", "accuracy", "per_type"} <= set(test)
    assert set(test["per_type"]) == {"POS", "NEG"} and test["f1"] > 0.5
    assert summary["best"]["metric"] == "f1"

    import ftkit
    tagger = ftkit.load(out).predictor
    saved = pd.read_csv(out / "predictions.csv")
    test_sentences = read_sentences(str(ner["test"]))
    again = [" ".join(tagger.labels[j] for j in p.argmax(axis=1)) for p in tagger.word_probabilities(test_sentences)]
    assert saved["predicted"].tolist() == again

    predicted = run_cli("predict", out, "--text", "the good film was bad awful")
    assert predicted.returncode == 0, predicted.stderr
    row = json.loads(predicted.stdout.splitlines()[0])
    assert {"tokens", "predicted", "entities"} <= set(row)
    scored = run_cli("eval", out, "--data", ner["test"])
    assert scored.returncode == 0 and "f1" in scored.stdout


def test_ner_bad_input_is_refused_with_file_and_line(tiny_model, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("good\tB-POS\nfilm\tO\n\nbad\tNEGATIVE\n")
    result = run_cli("fit", "--task", "token-classification", "--model", tiny_model, "--train", bad,
                     "--out", tmp_path / "x", "--quiet")
    assert result.returncode == 2 and "bad.conll line 4" in result.stderr and "NEGATIVE" in result.stderr
    assert not (tmp_path / "x").exists()

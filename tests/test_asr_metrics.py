"""Speech-recognition metrics against counts worked out by hand."""
import numpy as np
import pytest

from ftkit.errors import ConfigError
from ftkit.evaluation.asr import asr_ci, asr_metrics, normalizer, utterance_errors

# "the cat sat on the mat" -> "the cat sit on mat": sat->sit (1 sub), second "the" dropped (1 del)
SUB_DEL = ("the cat sat on the mat", "the cat sit on mat")
# "hello world" -> "hello big wide world": "big" and "wide" inserted (2 ins)
INS = ("hello world", "hello big wide world")


def test_wer_substitution_and_deletion_by_hand():
    m = asr_metrics([SUB_DEL[0]], [SUB_DEL[1]])
    assert (m["substitutions"], m["deletions"], m["insertions"], m["words"]) == (1, 1, 0, 6)
    assert m["wer"] == pytest.approx(2 / 6)
    assert m["exact_match"] == 0.0


def test_wer_with_insertions_can_pass_one():
    m = asr_metrics([INS[0]], [INS[1]])
    assert (m["substitutions"], m["deletions"], m["insertions"]) == (0, 0, 2)
    assert m["wer"] == pytest.approx(2 / 2)
    assert asr_metrics(["a"], ["x y z"])["wer"] == pytest.approx(3.0)  # 1 sub + 2 ins over 1 word


def test_corpus_wer_pools_errors_not_utterance_rates():
    # (2 + 2) errors over (6 + 2) words = 0.5, not the mean of 1/3 and 1
    m = asr_metrics([SUB_DEL[0], INS[0]], [SUB_DEL[1], INS[1]])
    assert m["wer"] == pytest.approx(4 / 8)
    assert (m["n"], m["words"]) == (2, 8)


def test_cer_by_hand_counts_spaces():
    assert asr_metrics(["abc"], ["abd"])["cer"] == pytest.approx(1 / 3)  # c->d over 3 chars
    # "ab c" is a, b, space, c: dropping the space is 1 deletion over 4 characters
    assert asr_metrics(["ab c"], ["abc"], normalize="none")["cer"] == pytest.approx(1 / 4)


@pytest.mark.parametrize("kind, ref, hyp, wer", [
    ("basic", "Hello, World!", "hello world", 0.0),
    ("none", "Hello, World!", "hello world", 1.0),       # both words differ exactly
    ("lowercase", "Hello World", "hello world", 0.0),
    ("lowercase", "Hello, World!", "hello world", 1.0),  # punctuation still counts
    ("none", "  a   b ", "a b", 0.0),                     # whitespace is never an error
    ("english", "twenty one", "21", 0.0),
    ("basic", "twenty one", "21", 1.0),                  # 1 sub + 1 del over 2 words
    ("english", "I won't go", "i will not go", 0.0),
])
def test_normalisation_kinds(kind, ref, hyp, wer):
    assert asr_metrics([ref], [hyp], normalize=kind)["wer"] == pytest.approx(wer)


def test_normalizer_output_and_unknown_kind():
    assert normalizer("basic")("  Hello,   World! ") == "hello world"
    assert normalizer("none")(" A  b ") == "A b"
    with pytest.raises(ConfigError, match=r"--set eval\.normalize"):
        normalizer("klingon")


def test_empty_reference_counts_hypothesis_as_insertions():
    # "?" is empty after basic normalisation: "uh huh" is 2 inserted words, 6 inserted characters
    m = asr_metrics(["?", "a b"], ["uh huh", "a b"])
    assert (m["words"], m["insertions"]) == (2, 2)
    assert m["wer"] == pytest.approx(2 / 2)
    assert m["cer"] == pytest.approx(6 / 3)  # "a b" is 3 characters
    assert m["exact_match"] == pytest.approx(0.5)


def test_corpus_without_reference_words():
    silent = asr_metrics(["?", ""], ["", "!"])
    assert (silent["wer"], silent["cer"], silent["exact_match"]) == (0.0, 0.0, 1.0)
    # errors over max(1, 0 words): the raw error count, finite
    assert asr_metrics(["?"], ["a b"])["wer"] == pytest.approx(2.0)
    assert asr_metrics([], [])["wer"] == 0.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        asr_metrics(["a", "b"], ["a"])


def test_utterance_errors_sum_to_corpus_numbers():
    refs, hyps = [SUB_DEL[0], INS[0], "?", "ab c"], [SUB_DEL[1], INS[1], "oops", "abc"]
    u, m = utterance_errors(refs, hyps), asr_metrics(refs, hyps)
    assert u["word_errors"].tolist() == [2, 2, 1, 2]  # "ab c" -> "abc": 1 sub + 1 del
    assert u["words"].tolist() == [6, 2, 0, 2]
    assert u["word_errors"].sum() == m["substitutions"] + m["deletions"] + m["insertions"]
    assert u["words"].sum() == m["words"]
    assert u["word_errors"].sum() / u["words"].sum() == pytest.approx(m["wer"])
    assert u["char_errors"].sum() / u["chars"].sum() == pytest.approx(m["cer"])
    assert all(a.dtype.kind == "i" for a in u.values())


def test_ci_of_perfect_corpus_is_zero():
    refs = ["one two", "three four five", "six"]
    ci = asr_ci(refs, refs, "basic", n_boot=200, level=0.95, seed=0)
    assert ci["wer"] == [0.0, 0.0] and ci["cer"] == [0.0, 0.0]
    assert (ci["level"], ci["n_boot"], ci["unit"]) == (0.95, 200, "utterance")


def test_ci_contains_point_and_narrows_with_more_utterances():
    rng = np.random.default_rng(1)
    refs = [" ".join(rng.choice(list("abcdef"), size=5)) for _ in range(40)]
    hyps = [r if i % 3 else r[:-2] for i, r in enumerate(refs)]  # every third drops its last word
    point = asr_metrics(refs, hyps)
    small = asr_ci(refs, hyps, "basic", n_boot=300, level=0.95, seed=0)
    big = asr_ci(refs * 10, hyps * 10, "basic", n_boot=300, level=0.95, seed=0)
    for metric in ("wer", "cer"):
        assert small[metric][0] <= point[metric] <= small[metric][1]
        assert big[metric][0] <= point[metric] <= big[metric][1]
        assert np.diff(big[metric])[0] < np.diff(small[metric])[0]
    loose = asr_ci(refs, hyps, "basic", n_boot=300, level=0.5, seed=0)
    assert np.diff(loose["wer"])[0] < np.diff(small["wer"])[0]
    assert asr_ci(refs, hyps, "basic", n_boot=300, level=0.95, seed=0) == small  # seeded

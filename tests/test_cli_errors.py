"""Bad input through the real CLI: exit 2, one line naming file/row/column, nothing written."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import run_cli, write_csv


def fit_fails(tmp_path, tiny_model, train, *extra):
    out = tmp_path / "run"
    result = run_cli("fit", "--model", tiny_model, "--train", train, "--out", out, "--quiet", *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not out.exists(), "a refused run must not leave a run folder"
    return lines[0]


def test_missing_file(tmp_path, tiny_model):
    assert "nope.csv: file not found" in fit_fails(tmp_path, tiny_model, tmp_path / "nope.csv")


def test_unknown_extension(tmp_path, tiny_model):
    (tmp_path / "d.xlsx").write_text("x")
    assert "unknown file type '.xlsx'" in fit_fails(tmp_path, tiny_model, tmp_path / "d.xlsx")


def test_empty_file(tmp_path, tiny_model):
    (tmp_path / "d.csv").write_text("")
    assert "d.csv: file is empty" in fit_fails(tmp_path, tiny_model, tmp_path / "d.csv")


def test_missing_column_lists_columns(tmp_path, tiny_model):
    path = write_csv(tmp_path / "d.csv", [{"review": "good", "label": "pos"}, {"review": "bad", "label": "neg"}])
    message = fit_fails(tmp_path, tiny_model, path)
    assert "no column 'text' (--text-column); columns are: review, label" in message
    message = fit_fails(tmp_path, tiny_model, path, "--text-column", "review", "--label-column", "stars")
    assert "no column 'stars' (--label-column)" in message


def test_empty_text_rows_name_the_line(tmp_path, tiny_model):
    rows = [{"text": "good film", "label": "pos"}, {"text": " ", "label": "neg"}, {"text": "", "label": "neg"}]
    message = fit_fails(tmp_path, tiny_model, write_csv(tmp_path / "d.csv", rows))
    assert "d.csv line 3: empty text in column 'text' (2 such rows)" in message
    assert "data.drop_empty=true" in message


def test_single_class(tmp_path, tiny_model):
    path = write_csv(tmp_path / "d.csv", [{"text": f"good {i}", "label": "pos"} for i in range(20)])
    assert "single class 'pos'" in fit_fails(tmp_path, tiny_model, path)


def test_non_utf8_and_ragged_rows(tmp_path, tiny_model):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("text,label\nfine,pos\ncaf\xe9 bad,neg\n".encode("latin-1"))
    assert "latin.csv line 3: byte 0xe9 is not valid UTF-8" in fit_fails(tmp_path, tiny_model, bad)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,pos\nbad, really bad,neg\n")
    assert "ragged.csv line 3: 3 fields but the header has 2" in fit_fails(tmp_path, tiny_model, ragged)


def test_bad_config_value_names_the_flag(tmp_path, tiny_model, sentiment):
    message = fit_fails(tmp_path, tiny_model, sentiment["train"], "--lr", "-1", "--set", "train.precision=fp8")
    assert "--lr" in message and "-1" in message and "train.precision" in message


def test_unknown_model_says_how_to_fix(tmp_path, sentiment):
    message = fit_fails(tmp_path, "no-such-model", sentiment["train"])
    assert "unknown model 'no-such-model'" in message and "ftkit models" in message


def test_debug_shows_the_traceback(tmp_path, tiny_model):
    result = run_cli("fit", "--model", tiny_model, "--train", tmp_path / "nope.csv", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize("label", ["maybe"])
def test_eval_label_the_model_never_saw(tmp_path, finished_run, label):
    path = write_csv(tmp_path / "e.csv", [{"text": "good film", "label": "pos"}, {"text": "meh", "label": label}])
    result = run_cli("eval", finished_run, "--data", path)
    assert result.returncode == 2
    assert f"e.csv line 3: label '{label}' never occurs in the training data (known: neg, pos)" in result.stderr


def test_finished_run_is_not_overwritten(finished_run, tiny_model, sentiment):
    result = run_cli("fit", "--model", tiny_model, "--train", sentiment["train"], "--out", finished_run)
    assert result.returncode == 2 and "already holds a finished run" in result.stderr
    assert "--overwrite" in result.stderr
    result = run_cli("fit", "--out", finished_run, "--resume")
    assert result.returncode == 2 and "nothing to resume" in result.stderr


def test_hub_id_offline_says_what_to_do(tmp_path, sentiment):
    message = fit_fails(tmp_path, "some-org/some-model", sentiment["train"])
    assert "cannot load 'some-org/some-model' from the Hugging Face Hub" in message
    assert "local folder" in message


# ---------------------------------------------------------------- usage errors, in a real process

def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args, named", [
    (["fit", "--no-such-flag"], "--no-such-flag"),  # unknown flag
    (["fit", "--batch-size", "abc"], "--batch-size"),  # not an int
    (["eval", "--data", "x.csv"], "run_dir"),  # missing argument
    (["compare", "--model", "m"], "--strategies"),  # missing required option
])
def test_usage_errors_print_one_line(args, named):
    line = one_error_line(run_cli(*args, isolated=True))
    assert named in line and "--help" in line and "╭" not in line


def test_close_flag_is_suggested():
    assert "--epochs" in one_error_line(run_cli("fit", "--epoch", "3", isolated=True))


def test_help_still_works():
    result = run_cli("fit", "--help", isolated=True)
    assert result.returncode == 0 and "--train" in result.stdout and not result.stderr
    result = run_cli(isolated=True)  # no command: the help, as before (usage: exit 2)
    assert result.returncode == 2 and "fit" in result.stdout and "error" not in result.stderr


def test_bad_data_fails_in_a_real_process(tmp_path):
    path = write_csv(tmp_path / "d.csv", [{"text": "good film", "label": "pos"}, {"text": "bad", "label": ""}])
    out = tmp_path / "run"
    line = one_error_line(run_cli("fit", "--model", "minilm-l6", "--train", path, "--out", out, "--quiet",
                                  isolated=True))
    assert "d.csv line 3: missing label in column 'label'" in line
    assert not out.exists()


HEAVY = ("torch", "sklearn", "transformers")


def test_bad_data_is_refused_before_torch_loads(tmp_path):
    """The precheck's point: every task module, and a refused `fit`, load none of the heavy modules
    (speed itself is bench/error_latency.py's business)."""
    path = write_csv(tmp_path / "d.csv", [{"review": "good", "label": "pos"}, {"review": "bad", "label": "neg"}])
    code = ("import runpy, sys\n"
            "from ftkit.tasks import load_builtin\n"
            "load_builtin()\n"
            f"sys.argv = ['ftkit', 'fit', '--model', 'minilm-l6', '--train', {str(path)!r}, '--quiet']\n"
            "try:\n    runpy.run_module('ftkit.cli', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            f"    print(exit.code, [m for m in {HEAVY!r} if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.stdout.split("\n")[0] == "2 []", result.stdout + result.stderr
    assert "no column 'text' (--text-column)" in result.stderr


def refused_without_heavy(*args) -> tuple[int, list[str], str]:
    """Run `ftkit ARGS` in a fresh interpreter -> (exit status, heavy modules it loaded, stderr)."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['ftkit'] + {[str(a) for a in args]!r}\n"
            "try:\n    runpy.run_module('ftkit.cli', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            f"    print(exit.code, [m for m in {HEAVY + ('optuna',)!r} if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    status, _, loaded = result.stdout.split("\n")[0].partition(" ")
    return int(status), ast.literal_eval(loaded), result.stderr


NO_TEXT = "no column 'text' (--text-column)"


@pytest.mark.parametrize("command, args, says", [
    ("compare", ["--strategies", "full,lora", "--model", "minilm-l6"], NO_TEXT),
    ("compare", ["--strategies", "full,nosuch", "--model", "minilm-l6"], "unknown strategy 'nosuch'"),
    ("tune", ["--trials", "2", "--model", "minilm-l6", "--train", "{missing}"], "missing.csv: file not found"),
    ("advise", ["--model", "minilm-l6"], NO_TEXT),
    ("advise", ["--task", "token-classification", "--model", "minilm-l6"], "line 1: no tag column"),
    ("auto", ["--time-budget", "10m", "--model", "minilm-l6"], NO_TEXT),
    ("rank", ["--models", "minilm-l6,random:minilm-l6"], NO_TEXT),
    ("fit", ["--baseline", "scratch", "--model", "minilm-l6"], NO_TEXT),
], ids=["compare", "compare-unknown-strategy", "tune", "advise", "advise-ner", "auto", "rank", "fit-baseline"])
def test_outer_loops_refuse_bad_input_before_torch_loads(tmp_path, command, args, says):
    """compare, tune, advise, auto, rank and fit --baseline check before the engine loads, as fit does:
    exit 2, one line, no heavy module imported and (but auto's doctor.json) nothing written."""
    no_text = write_csv(tmp_path / "review.csv", [{"review": "good", "label": "pos"}, {"review": "bad", "label": "neg"}])
    args = [a.format(missing=tmp_path / "missing.csv") for a in args]
    if "--train" not in args:
        args += ["--train", str(no_text)]
    out = tmp_path / "out"
    status, loaded, stderr = refused_without_heavy(command, *args, "--out", out, "--quiet")
    lines = stderr.strip().splitlines()
    assert (status, loaded) == (2, []), stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], stderr
    if command == "auto":  # its doctor stage reports the refusal in doctor.json, by design
        assert sorted(p.name for p in out.iterdir()) == ["doctor.json"]
    else:
        assert not out.exists(), "a refused command must not write its --out"

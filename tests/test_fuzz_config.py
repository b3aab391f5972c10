"""Hostile configs (hypothesis): YAML files and `--set` items either build a valid FitConfig or
raise a ConfigError whose message is one line and names the file, the flag or the key; never
another exception. Counts as in test_fuzz_readers.py (FTKIT_FUZZ_COUNTS=PATH)."""
import json
import math
import re
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import save_fuzz_counts
from ftkit.config import FitConfig, build_config, flatten, parse_set, to_dict
from ftkit.errors import ConfigError, FtkitError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COUNTS: dict[str, Counter] = {}
KEYS = sorted(flatten(to_dict(FitConfig())))  # every dotted key: data.train, train.lr, ...


@pytest.fixture(scope="module", autouse=True)
def write_counts():
    yield
    save_fuzz_counts(COUNTS)


def outcome(reader: str, build, names: list[str]):
    """A valid config, or a one-line ConfigError naming one of `names` (file, flag or key)."""
    counts = COUNTS.setdefault(reader, Counter())
    counts["inputs"] += 1
    try:
        cfg = build()
    except FtkitError as err:
        assert isinstance(err, ConfigError), err
        message = str(err)
        assert "\n" not in message and "\r" not in message, message
        assert any(n in message for n in names), message
        counts["clean errors"] += 1
        return None
    counts["valid results"] += 1
    assert isinstance(cfg, FitConfig)
    saved = to_dict(cfg)
    json.dumps(saved, allow_nan=False)  # what the run folder's config.yaml/summary.json can hold
    assert all(not isinstance(v, float) or math.isfinite(v) for v in flatten(saved).values())
    return cfg


SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=12),
                   st.sampled_from(["1e-3", "3", ".inf", "-.nan", "yes", "off", "auto", "fp32", "cuda", "lora"]))
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                     max_leaves=8)
KEY = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(["nope", "train.nope", "data.augment.x",
                                                                               "strategy.layers", "train", "a..b", ""]))


@st.composite
def yaml_text(draw):
    kind = draw(st.sampled_from(["tree", "tree", "tree", "text", "bytes", "top"]))
    if kind == "tree":  # a mapping of real and made-up dotted keys, nested as a user would write it
        tree: dict = {}
        for key, value in draw(st.dictionaries(KEY, VALUE, max_size=5)).items():
            node = tree
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else node
            node[parts[-1]] = value
        return yaml.safe_dump(tree, allow_unicode=draw(st.booleans())).encode()
    if kind == "top":  # a valid YAML document that is not a mapping
        return yaml.safe_dump(draw(st.one_of(SCALAR, st.lists(SCALAR, max_size=3)))).encode()
    if kind == "text":  # YAML syntax a hand edit can break
        pieces = st.sampled_from(["train:", "\n  lr: ", "1e-3", "[", "]", "{", "}", ": ", "- ", "\t", "&a ", "*a", "*b",
                                  "!!python/object:os.system ", "!!timestamp x", "!!binary ?", "'", '"', "\n", "---\n",
                                  "? ", "%YAML 1.1\n", "\x00", "\ufeff", "data:\n  train: x.csv", "\n  - 1"])
        return "".join(draw(st.lists(pieces, max_size=12))).encode(draw(st.sampled_from(["utf-8", "utf-16"])))
    return draw(st.binary(max_size=80))


@FUZZ
@given(data=yaml_text())
def test_yaml_config(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.yaml"
        path.write_bytes(data)
        outcome("yaml config", lambda: build_config(path), ["hostile.yaml", "--", "setting"])


SET_VALUE = st.one_of(SCALAR.map(str), st.sampled_from(["[1", "{a: 1}", "&a [*a]", "&a {b: *a}", "[" * 3000, "x" * 5000,
                                                         "!!python/name:os.system", "!!timestamp x", "1=2", "", " ",
                                                         "null", "~", "0x1F", "1_000", "\x00"]))


@settings(FUZZ, max_examples=100)  # each item may be parsed as deeply nested YAML: slower
@given(items=st.lists(st.one_of(st.tuples(KEY, st.sampled_from(["=", "=", "=", " = ", ":", ""]), SET_VALUE)
                                .map("".join), st.text(max_size=10)), min_size=1, max_size=3))
def test_set_items(items):
    """`--set` items: the error names the flag (--set ITEM or the setting's own --flag)."""
    outcome("--set", lambda: build_config(sets=items), ["--set", "--", "setting"])


@FUZZ
@given(item=st.one_of(st.text(alphabet="ab.=: \t1[{", max_size=12), st.text(max_size=30)))
def test_parse_set_never_crashes(item):
    counts = COUNTS.setdefault("parse_set", Counter())
    counts["inputs"] += 1
    try:
        key, _ = parse_set(item)
    except ConfigError as err:
        assert "\n" not in str(err) and "--set" in str(err)
        counts["clean errors"] += 1
        return
    counts["valid results"] += 1
    assert key and key == key.strip()


@pytest.mark.parametrize("text, message", [
    ("train: &a {lr: *a}\n", "refer to themselves"),
    ("strategy: {layers: &a [*a]}\n", "refer to themselves"),
    ("a: " + "[" * 5000 + "\n", "nested too deeply"),
    ("\x00", "not valid YAML (unacceptable character"),
    ("train: {lr: !!timestamp x}\n", "not valid YAML"),
    ("train: {epochs: .inf}\n", "--epochs: input should be a finite number"),
    ("".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)).replace(
        "a1: &a1 [*a0", "a0: &a0 [x]\na1: &a1 [*a0"), "too large"),
])
def test_yaml_fixed_cases(tmp_path, text, message):
    """The crashes (and the accepted infinite epochs) the fuzzing found, kept as plain examples."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        build_config(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("item, message", [
    ("seed=" + "[" * 3000, "--seed"),
    ("strategy.layers=&a [*a]", "refers to itself"),
    ("train.epochs=.inf", "--epochs: input should be a finite number"),
    ("train.lr=" + "x" * 5000, "..."),  # the value is cut in the message
    ("data.allow_outside_paths=maybe", "--set data.allow_outside_paths: input should be a valid boolean"),
])
def test_set_fixed_cases(item, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        build_config(sets=[item])
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_allow_outside_paths_is_a_typed_setting_with_help():
    field = FitConfig.model_fields["data"].annotation.model_fields["allow_outside_paths"]
    assert field.default is False and "outside" in field.description
    assert build_config(sets=["data.allow_outside_paths=true"]).data.allow_outside_paths is True

"""Every registered strategy on a tiny BERT: what trains, what stays bitwise frozen, lr scales."""
import json

import pytest
import torch
from safetensors.torch import load_file

import ftkit
from ftkit.config import FitConfig
from ftkit.errors import StrategyError
from ftkit.strategies import STRATEGIES, Settings, general_strategies, get_strategy, strategy_settings
from ftkit.strategies.groups import layer_groups

get_strategy("full")  # registers the built-ins


def classifier(tiny_model):
    from transformers import AutoModelForSequenceClassification
    return AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)


def plain(name: str) -> str:
    """Parameter name as in the pretrained file (no task prefix, no PEFT wrapper parts)."""
    return name.removeprefix("base_model.model.").removeprefix("bert.").replace(".base_layer", "")


def trained_weights(run_dir) -> dict:
    """Weights of a finished run by pretrained name; LoRA runs are loaded with their adapter."""
    meta = json.loads((run_dir / "model" / "ftkit.json").read_text())
    if not meta["adapter"]:
        return {plain(k): v for k, v in load_file(str(run_dir / "model" / "model.safetensors")).items()}
    return {plain(k): v for k, v in ftkit.load(run_dir).predictor.model.state_dict().items()}


def cfg(name, **extra):
    return FitConfig.model_validate({"strategy": {"name": name, **extra}})


def test_layer_groups_of_bert(tiny_model):
    groups = layer_groups(classifier(tiny_model))
    assert all(n.startswith("bert.embeddings.") for n, _ in groups.embeddings)
    assert len(groups.blocks) == 2
    assert all(n.startswith("bert.encoder.layer.1.") for n, _ in groups.blocks[1])
    assert {n.split(".")[0] for n, _ in groups.head} == {"bert", "classifier"}  # pooler + classifier


def test_freeze_bottom_bitfit_llrd_choose_what_trains(tiny_model):
    model = classifier(tiny_model)
    get_strategy("freeze-bottom")(model, cfg("freeze-bottom", layers=1))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in trainable)
    assert any(n.startswith("bert.encoder.layer.1.") for n in trainable) and "classifier.weight" in trainable

    summary = get_strategy("bitfit")(model, cfg("bitfit"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.endswith("bias") or n.startswith(("classifier.", "bert.pooler.")) for n in trainable)
    assert summary.trainable < summary.total / 5

    summary = get_strategy("llrd")(model, cfg("llrd", decay=0.5))
    assert summary.trainable == summary.total
    assert summary.lr_scales["classifier.weight"] == 1.0
    assert summary.lr_scales["bert.encoder.layer.1.output.dense.weight"] == 0.5
    assert summary.lr_scales["bert.embeddings.word_embeddings.weight"] == 0.5 ** 3


def test_strategy_settings_are_checked(tiny_model):
    model = classifier(tiny_model)
    with pytest.raises(StrategyError, match="strategy.layrs"):
        get_strategy("freeze-bottom")(model, cfg("freeze-bottom", layrs=1))
    with pytest.raises(StrategyError, match="from 0 to 2"):
        get_strategy("freeze-bottom")(model, cfg("freeze-bottom", layers=5))


@pytest.mark.parametrize("name", general_strategies())
def test_every_strategy_trains_one_epoch_and_keeps_frozen_weights(name, tiny_model, sentiment, tmp_path):
    run = ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
                    strategy=name, out=str(tmp_path / name), epochs=1, batch_size=16, lr=3e-3, quiet=True,
                    overrides={"train.threads": 1})
    assert run.summary["strategy"] == name
    assert 0 < run.summary["params"]["trainable"] <= run.summary["params"]["total"]
    before = load_file(str(tiny_model / "model.safetensors"))
    after = trained_weights(tmp_path / name)
    model = classifier(tiny_model)
    get_strategy(name)(model, FitConfig.model_validate({"strategy": {"name": name}}))
    frozen = [plain(n) for n, p in model.named_parameters() if not p.requires_grad and plain(n) in before]
    assert frozen or name in ("full", "llrd", "lp-ft")
    for key in frozen:
        assert torch.equal(before[key], after[key]), f"{name} changed frozen {key}"
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    adapters = [k for k, v in after.items() if "lora_B" in k and v.abs().sum() > 0]  # LoRA's B starts at 0
    assert changed or adapters or name == "linear-probe", f"{name} trained nothing in the body"


def test_gradual_unfreeze_opens_one_group_per_epoch(tiny_model, sentiment, tmp_path):
    """After 2 epochs: the head and the top block moved, the lower block and embeddings did not."""
    ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
              strategy="gradual-unfreeze", out=str(tmp_path / "g"), epochs=2, batch_size=16, lr=3e-3,
              quiet=True, overrides={"train.threads": 1, "train.restore_best": False})
    before = load_file(str(tiny_model / "model.safetensors"))
    after = {k.removeprefix("bert."): v for k, v in load_file(str(tmp_path / "g" / "model" / "model.safetensors")).items()}

    def moved(prefix):
        return [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]

    assert moved("pooler.")  # head, epoch 0 on
    assert moved("encoder.layer.1.")  # unfrozen at epoch 1
    assert not moved("encoder.layer.0.") and not moved("embeddings.")
    summary = get_strategy("gradual-unfreeze")(classifier(tiny_model), cfg("gradual-unfreeze"))
    assert len(summary.unfreeze) == 3  # top block, lower block, embeddings
    assert summary.unfreeze[0][0].startswith("bert.encoder.layer.1.")


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_has_typed_settings_that_refuse_unknown_keys(name):
    settings = get_strategy(name).settings
    assert issubclass(settings, Settings)
    assert strategy_settings(cfg(name), name) == settings()  # the defaults validate
    with pytest.raises(StrategyError, match=rf"--set strategy.nope: not a setting of strategy '{name}' \(its settings: "):
        strategy_settings(cfg(name, nope=1), name)


@pytest.mark.parametrize("name, key, value, message", [
    ("lora", "rank", 0, "--set strategy.rank: input should be greater than or equal to 1, got 0"),
    ("lora", "rank", True, "--set strategy.rank: input should be a valid integer, got True"),  # not coerced
    ("lora", "target_modules", "query", "--set strategy.target_modules: "),
    ("llrd", "decay", 1.5, "--set strategy.decay: input should be less than or equal to 1, got 1.5"),
    ("lp-ft", "probe_epochs", "five", "--set strategy.probe_epochs: input should be a valid number, got 'five'"),
    ("freeze-bottom", "layers", 1.5, "--set strategy.layers: input should be a valid integer, got 1.5"),
])
def test_bad_strategy_settings_name_the_key(name, key, value, message):
    with pytest.raises(StrategyError) as err:
        strategy_settings(cfg(name, **{key: value}), name)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert strategy_settings(cfg("lora", rank=4, dropout=0), "lora").rank == 4  # ints stand for floats



@pytest.mark.parametrize("strategy", ["full", "gradual-unfreeze"])
def test_frozen_word_embeddings_stay_frozen_under_any_strategy(strategy, tiny_model, sentiment, tmp_path):
    """model.freeze_word_embeddings: the token-embedding matrix keeps its pretrained values (also
    through gradual unfreezing), the position embeddings train, and the counts say so."""
    from conftest import fast_flags, run_cli, summary

    pretrained = load_file(str(tiny_model / "model.safetensors"))
    out = tmp_path / strategy
    result = run_cli(*fast_flags(tiny_model, sentiment, out, "--strategy", strategy,
                                 "--set", "model.freeze_word_embeddings=true"))
    assert result.returncode == 0, result.stderr
    trained = load_file(str(out / "model" / "model.safetensors"))

    def weight(tensors, suffix):
        return next(v for k, v in tensors.items() if k.endswith(suffix))

    assert torch.equal(weight(trained, "word_embeddings.weight"), weight(pretrained, "word_embeddings.weight"))
    if strategy == "full":  # gradual unfreezing reaches the embeddings group in the last epoch only
        assert not torch.equal(weight(trained, "position_embeddings.weight"),
                               weight(pretrained, "position_embeddings.weight"))
    params = summary(out)["params"]
    assert params["trainable"] <= params["total"] - weight(trained, "word_embeddings.weight").numel()

"""Speech-recognition models: Whisper (encoder-decoder, generates text) and CTC models (wav2vec2,
HuBERT, ...: one character distribution per audio frame), loaded from any local Hugging Face
folder, with the processor that turns clips into model inputs and transcripts into labels.

A CTC folder without a tokenizer (a pretrained body, e.g. wav2vec2-base) gets a character
vocabulary built from the training transcripts and a new output layer, as in the usual
wav2vec2 fine-tuning recipe.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ftkit.errors import ModelLoadError
from ftkit.lazy import F, inference_mode, torch  # loaded at first use: clips are read and checked without it
from ftkit.models.loading import ModelSource, hub_failure, quiet_transformers

log = logging.getLogger(__name__)

IGNORE = -100  # label positions the loss skips (padding)
WHISPER_PREFIX = 4  # <|startoftranscript|><|lang|><|transcribe|><|notimestamps|>


@dataclass
class SpeechProcessor:
    """The model's feature extractor + tokenizer, and what the task needs to know about them."""

    kind: str  # "whisper" or "ctc"
    processor: object  # the Hugging Face processor (feature_extractor + tokenizer)
    rate: int  # sampling rate the model takes
    max_seconds: Optional[float]  # longest clip one forward pass takes (Whisper: 30 s); None: any
    max_label_tokens: int
    language: Optional[str] = None  # Whisper: the transcripts' language
    settings: dict = field(default_factory=dict)  # e.g. SpecAugment, for the summary

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def features(self):
        return self.processor.feature_extractor

    def labels(self, text: str) -> np.ndarray:
        """Token ids the model learns to emit for `text`."""
        if self.kind == "whisper":
            # The model prepends <|startoftranscript|> itself (decoder_start_token_id); a leading
            # space matches how Whisper writes the first word of a transcript.
            ids = self.tokenizer(" " + text).input_ids
            return np.asarray(ids[1:], dtype=np.int64)
        return np.asarray(self.tokenizer(text).input_ids, dtype=np.int64)

    def save_pretrained(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)


def model_family(location: str) -> str:
    """'whisper' or 'ctc', from the folder's config.json; anything else is refused."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(location)
    if config.model_type == "whisper":
        return "whisper"
    if any(a.endswith("ForCTC") for a in (config.architectures or [])) or hasattr(config, "ctc_loss_reduction"):
        return "ctc"
    raise ModelLoadError(f"{location}: a {config.model_type} model; speech recognition takes Whisper "
                         "(encoder-decoder) or CTC models (wav2vec2, HuBERT, WavLM, ...)")


def build_speech(source: ModelSource, cfg, alphabet: list[str]):
    """(model, SpeechProcessor) with SpecAugment set as configured; fp32 weights."""
    from transformers import AutoConfig

    from ftkit.data.audio_augment import spec_augment

    remote = cfg.model.trust_remote_code
    try:
        family = model_family(source.location)
        config = AutoConfig.from_pretrained(source.location, trust_remote_code=remote)
        # before the model is built: wav2vec2 creates its mask embedding only when masking is on
        augment = cfg.data.audio_augment
        settings = {"spec_augment": spec_augment(config, augment.enabled and augment.spec_augment)}
        build = _build_whisper if family == "whisper" else _build_ctc
        model, processor = build(source, config, cfg, alphabet)
    except OSError as err:
        raise hub_failure(source, err) from None
    processor.settings = settings
    return model, processor


def _build_whisper(source: ModelSource, config, cfg, alphabet):
    from transformers import AutoProcessor, WhisperForConditionalGeneration

    with quiet_transformers():
        model = WhisperForConditionalGeneration.from_pretrained(source.location, config=config, dtype=torch.float32,
                                                                trust_remote_code=cfg.model.trust_remote_code)
        processor = AutoProcessor.from_pretrained(source.location)
    language = cfg.model.language or "en"
    g = model.generation_config
    if getattr(g, "lang_to_id", None) and f"<|{language}|>" not in g.lang_to_id:
        raise ModelLoadError(f"--set model.language={language}: not a language of {source.location} "
                             f"(e.g. {', '.join(sorted(k.strip('<|>') for k in g.lang_to_id)[:12])}, ...)")
    processor.tokenizer.set_prefix_tokens(language=language, task="transcribe", predict_timestamps=False)
    model.config.forced_decoder_ids = None  # the language/task come from generate(), not a fixed prompt
    g.forced_decoder_ids = None
    model.ftkit_pretrained_head = True  # the output layer is the pretrained one: nothing new to save
    fe = processor.feature_extractor
    limit = config.max_target_positions - WHISPER_PREFIX
    return model, SpeechProcessor("whisper", processor, fe.sampling_rate, float(fe.chunk_length),
                                  min(cfg.data.max_label_tokens or limit, limit), language)


def _build_ctc(source: ModelSource, config, cfg, alphabet):
    from transformers import AutoFeatureExtractor, AutoModelForCTC, Wav2Vec2Processor

    folder = Path(source.location)
    tokenizer = _ctc_tokenizer(folder, alphabet)
    new_vocab = not _has_tokenizer(folder)
    if new_vocab:
        config.vocab_size, config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
    config.ctc_zero_infinity = True  # a clip shorter than its transcript gives 0 loss, not inf/nan
    config.ctc_loss_reduction = "mean"  # per target length, averaged over the batch: lr independent of batch size
    with quiet_transformers():
        features = AutoFeatureExtractor.from_pretrained(source.location)
        model = AutoModelForCTC.from_pretrained(source.location, config=config, dtype=torch.float32,
                                                ignore_mismatched_sizes=new_vocab,
                                                trust_remote_code=cfg.model.trust_remote_code)
    model.ftkit_pretrained_head = not new_vocab
    if new_vocab:
        log.info("%s has no tokenizer: a character vocabulary of %d symbols from the training transcripts "
                 "and a new output layer", folder, len(tokenizer))
    processor = Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer)
    return model, SpeechProcessor("ctc", processor, features.sampling_rate, cfg.data.max_audio_seconds,
                                  cfg.data.max_label_tokens or 10_000)


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "vocab.json").is_file() or (folder / "tokenizer.json").is_file()


def _ctc_tokenizer(folder: Path, alphabet: list[str]):
    """The folder's tokenizer, else one symbol per character of the training transcripts
    (space as the word delimiter '|', <pad> doubling as the CTC blank)."""
    from transformers import AutoTokenizer, Wav2Vec2CTCTokenizer

    if _has_tokenizer(folder):
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(folder))
    import tempfile

    symbols = ["<pad>", "<unk>", "|"] + [c for c in alphabet if c != " "]
    with tempfile.TemporaryDirectory() as tmp:  # the tokenizer reads its vocabulary from a file once
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
        return Wav2Vec2CTCTokenizer(str(path), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")


# ---------------------------------------------------------------- transcribing

def speech_batch(proc: SpeechProcessor, clips: list[np.ndarray], labels: Optional[list[np.ndarray]]) -> dict:
    """Model inputs for a list of clips: Whisper log-mel features padded to its 30 s window, or
    CTC raw audio padded to the longest clip (with its attention mask); labels padded with IGNORE."""
    if proc.kind == "whisper":
        out = {"input_features": proc.features(clips, sampling_rate=proc.rate, return_tensors="pt").input_features}
    else:
        enc = proc.features(clips, sampling_rate=proc.rate, padding=True, return_attention_mask=True,
                            return_tensors="pt")
        out = {"input_values": enc.input_values, "attention_mask": enc.attention_mask}
    if labels is not None:
        out["labels"] = pad_labels(labels)
    return out


def pad_labels(labels: list[np.ndarray]) -> torch.Tensor:
    width = max(len(x) for x in labels)
    out = np.full((len(labels), width), IGNORE, dtype=np.int64)  # (batch, tokens)
    for row, ids in enumerate(labels):
        out[row, :len(ids)] = ids
    return torch.from_numpy(out)


def seq2seq_loss(model, batch: dict, smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """Teacher-forced cross-entropy of the transcript tokens; the encoder runs unless the batch
    carries its cached outputs."""
    inputs = _encoder_inputs(batch)
    logits = model(**inputs, labels=batch["labels"]).logits  # (batch, tokens, vocab)
    return F.cross_entropy(logits.float().transpose(1, 2), batch["labels"], ignore_index=IGNORE,
                           label_smoothing=smoothing, reduction=reduction)


def _encoder_inputs(batch: dict) -> dict:
    from transformers.modeling_outputs import BaseModelOutput

    if "encoder_hidden" in batch:
        return {"encoder_outputs": BaseModelOutput(last_hidden_state=batch["encoder_hidden"])}
    return {"input_features": batch["input_features"]}


@inference_mode
def transcribe_batch(model, proc: SpeechProcessor, batch: dict, precision: str, num_beams: int,
                     max_new_tokens: int) -> tuple[list[str], float, int]:
    """(transcripts, summed loss, units it sums over) for one batch: Whisper's loss per label
    token, CTC's per clip (HF's "mean" CTC loss is already per target length); (.., nan, 0)
    without labels."""
    from ftkit.training.device import autocast

    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    loss_sum, n = float("nan"), 0
    with autocast(precision, device):
        if proc.kind == "ctc":
            out = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"],
                        labels=batch.get("labels"))
            ids = out.logits.float().argmax(dim=-1)  # (batch, frames): greedy CTC
            texts = proc.tokenizer.batch_decode(ids.cpu().numpy())
            if "labels" in batch:
                n = len(ids)
                loss_sum = float(out.loss) * n
            return texts, loss_sum, n
        encoder = _encoder_outputs(model, batch)
        if "labels" in batch:
            labelled = {"encoder_hidden": encoder.last_hidden_state, "labels": batch["labels"]}
            loss_sum = float(seq2seq_loss(model, labelled, reduction="sum"))
            n = int((batch["labels"] != IGNORE).sum())
        room = model.config.max_target_positions - WHISPER_PREFIX  # prompt + new tokens fit the decoder
        with quiet_transformers():
            ids = model.generate(encoder_outputs=encoder, language=proc.language, task="transcribe",
                                 max_new_tokens=min(max_new_tokens, room), num_beams=num_beams)
    return [t.strip() for t in proc.tokenizer.batch_decode(ids, skip_special_tokens=True)], loss_sum, n


def _encoder_outputs(model, batch: dict):
    from transformers.modeling_outputs import BaseModelOutput

    if "encoder_hidden" in batch:
        return BaseModelOutput(last_hidden_state=batch["encoder_hidden"])
    return model.get_encoder()(batch["input_features"])


@inference_mode
def transcribe_long(model, proc: SpeechProcessor, clip: np.ndarray, num_beams: int) -> str:
    """A clip longer than Whisper's 30 s window: Hugging Face's sequential long-form decoding
    (windows stitched by predicted timestamps)."""
    device = next(model.parameters()).device
    enc = proc.features([clip], sampling_rate=proc.rate, truncation=False, padding="longest",
                        return_attention_mask=True, return_tensors="pt")
    with quiet_transformers():
        ids = model.generate(enc.input_features.to(device), attention_mask=enc.attention_mask.to(device),
                             language=proc.language, task="transcribe", return_timestamps=True,
                             num_beams=num_beams)
    return proc.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()

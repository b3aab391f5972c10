"""`ftkit import FORMAT SRC OUT`: checkpoints of other formats as Hugging Face folders."""
from __future__ import annotations

from pathlib import Path

import typer

from ftkit.cli_output import setup_logging
from ftkit.errors import FtkitError

import_app = typer.Typer(no_args_is_help=True, help="Turn checkpoints of other formats into Hugging Face folders.")


@import_app.command("ctranslate2")
def import_ctranslate2(
    src: Path = typer.Argument(..., help="CTranslate2 / faster-whisper model folder (model.bin or its parts, "
                               "config.json, tokenizer.json)"),
    out: Path = typer.Argument(..., help="Hugging Face folder to write (safetensors, tokenizer, feature extractor)"),
    overwrite: bool = typer.Option(False, help="replace OUT if it exists"),
) -> None:
    """Import a CTranslate2 Whisper checkpoint as a Hugging Face WhisperForConditionalGeneration folder."""
    from ftkit.models.whisper_import import import_whisper

    setup_logging(True)
    if out.exists() and not overwrite:
        raise FtkitError(f"{out} exists; pass --overwrite to replace it, or choose another folder")
    typer.echo(f"imported: {import_whisper(src, out)}")

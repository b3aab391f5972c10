"""`ftkit import FORMAT SRC OUT` -> `ftkit.api.import_checkpoint`: other formats as Hugging Face folders."""
from __future__ import annotations

from pathlib import Path

import typer

from ftkit.cli_output import setup_logging

import_app = typer.Typer(no_args_is_help=True, help="Turn checkpoints of other formats into Hugging Face folders.")


@import_app.command("ctranslate2")
def import_ctranslate2(
    src: Path = typer.Argument(..., help="CTranslate2 / faster-whisper model folder (model.bin or its parts, "
                               "config.json, tokenizer.json)"),
    out: Path = typer.Argument(..., help="Hugging Face folder to write (safetensors, tokenizer, feature extractor)"),
    overwrite: bool = typer.Option(False, help="replace OUT if it exists"),
) -> None:
    """Import a CTranslate2 Whisper checkpoint as a Hugging Face WhisperForConditionalGeneration folder."""
    from ftkit.api import import_checkpoint

    setup_logging(True)
    typer.echo(f"imported: {import_checkpoint('ctranslate2', src, out, overwrite=overwrite)}")

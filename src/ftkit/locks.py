"""One ftkit process per output folder.

`folder_lock(OUT)` holds an advisory lock (flock) on OUT/.ftkit.lock for as long as the command
runs. The operating system drops the lock when its process ends, `kill -9` included, so a lock
file left by a dead process is stale by construction: the next command takes it over (and says
whose it was). The file records the holder (pid, host, command, start) only for that message.
A folder the lock created is removed again on release if nothing else was written to it, so a
refused command leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

from ftkit.errors import RunDirError

log = logging.getLogger(__name__)

LOCK_NAME = ".ftkit.lock"
_held: set[Path] = set()  # folders this process holds (its checks must not refuse its own lock)


@contextlib.contextmanager
def folder_lock(folder: str | Path, flag: str = "--out") -> Iterator[Path]:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"{flag} {folder} is a file; choose a folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _acquire(path, folder, flag)
    _held.add(folder.resolve())
    try:
        yield folder
    finally:
        _held.discard(folder.resolve())
        with contextlib.suppress(OSError):
            path.unlink()  # before the lock goes: a waiting process then opens a new file
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: a command refused before writing anything


def refuse_if_locked(folder: str | Path, flag: str = "--out") -> None:
    """Raise, without taking it, if a running command holds FOLDER's lock (checks that run before
    the lock is taken say "in use" rather than what they see of a folder being written)."""
    path = Path(folder) / LOCK_NAME
    if Path(folder).resolve() in _held:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise RunDirError(_in_use(folder, flag, _read(fd))) from None
    finally:
        os.close(fd)


def lock_holder(folder: str | Path) -> Optional[dict]:
    """{"pid", "host", "command", "started"} of the running command that holds FOLDER's lock, or
    None when none does (the studio shows a run as running, and stops it, by this)."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read(fd) or {"pid": None}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _in_use(folder, flag: str, holder: dict) -> str:
    return (f"{flag} {folder} is in use by another ftkit command ({_describe(holder)}); wait for it to end, "
            f"or choose another {flag}")


def holds_lock_only(folder: Path) -> bool:
    """True for a folder whose only content is a lock file (a new or a cleanly refused run)."""
    return all(child.name == LOCK_NAME for child in folder.iterdir())


def _acquire(path: Path, folder: Path, flag: str) -> int:
    for _ in range(3):  # the holder may remove the file between our open and our lock: retry
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            message = _in_use(folder, flag, _read(fd))
            os.close(fd)
            raise RunDirError(message) from None
        if _same_file(fd, path):
            break
        os.close(fd)
    else:
        raise RunDirError(f"{flag} {folder}: could not lock {path} (another command keeps replacing it)")
    stale = _read(fd)
    if stale:
        log.warning("%s: took over the lock of a command that is no longer running (%s)", folder,
                    _describe({k: v for k, v in stale.items() if k != "command"}))
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(["ftkit", *sys.argv[1:]])[:300],
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?"}


def _describe(holder: dict) -> str:
    if not holder:
        return "pid unknown"
    parts = [f"pid {holder.get('pid', '?')}"]
    if holder.get("host") and holder["host"] != socket.gethostname():
        parts.append(f"on {holder['host']}")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    if holder.get("command"):
        parts.append(f"`{holder['command']}`")
    return ", ".join(parts)

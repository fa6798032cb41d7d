"""The state directory: datasets, sync times and the budget window survive restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

from calfeed.json_steps import dumping
from calfeed.steps import all_at_once, in_turns

log = logging.getLogger("calfeed.state")


def default_state_dir() -> Path:
    """$XDG_DATA_HOME/calfeed, else ~/.local/share/calfeed."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "calfeed"


def write_atomically(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write temp, fsync, rename, fsync the folder: a reader sees the old file or the new.
    `data` whole, or in pieces (written one after another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            if isinstance(data, bytes | bytearray | memoryview):
                file.write(data)
            else:
                file.writelines(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _ascii(pieces: Iterable[str]) -> Iterator[bytes]:
    # ASCII: LL2 text may hold lone surrogates, which no UTF-8 encoder takes but a JSON
    # escape (json writes nothing else) carries through to the next start unchanged
    return (piece.encode("ascii") for piece in pieces)


class StateStore:
    """JSON files in one folder, one per name; unreadable files are logged and ignored."""

    FORMAT = 1

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        """Where a named state lives."""
        return self.folder / f"{name}.json"

    def save(self, name: str, state: dict[str, Any]) -> None:
        """Persist one state; a failure is logged, never raised (serving goes on)."""
        with self._failure_logged(name):
            write_atomically(self.path(name), _ascii(all_at_once(self._text(state))))

    async def save_in_turns(self, name: str, state: dict[str, Any]) -> None:
        """`save` for a large state (a dataset): its text made on the loop with turns for
        other requests between slices, then written and fsynced in a thread. (json.dumps
        in a thread held the GIL throughout: 0.4 s of stopped loop at 50,000 events.)"""
        with self._failure_logged(name):
            pieces = await in_turns(self._text(state))
            await asyncio.to_thread(write_atomically, self.path(name), _ascii(pieces))

    def _text(self, state: dict[str, Any]) -> Generator[None, None, list[str]]:
        return dumping({"format": self.FORMAT, "state": state})

    @staticmethod
    @contextlib.contextmanager
    def _failure_logged(name: str) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError, RecursionError) as error:
            log.warning("state=save-failed name=%s error=%r", name, str(error))

    def load(self, name: str) -> dict[str, Any] | None:
        """A saved state, or None when missing, truncated, corrupt or of another format."""
        path = self.path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("state=unreadable path=%s error=%r", path, str(error))
            return None
        try:
            data = json.loads(raw)
        # (RecursionError: nested deeper than the parser goes, a garbled or hand-made file)
        except (ValueError, RecursionError) as error:
            log.warning("state=corrupt path=%s error=%r (ignored, starting clean)", path,
                        str(error))
            return None
        if not isinstance(data, dict) or data.get("format") != self.FORMAT:
            # kept aside, not written over: a newer calfeed's file (this one was rolled
            # back to) is still there when the newer one is started again
            aside = path.with_name(path.name + ".unknown-format")
            try:
                os.replace(path, aside)
            except OSError as error:
                log.warning("state=unknown-format path=%s kept=no error=%r (ignored, "
                            "starting clean)", path, str(error))
            else:
                log.warning("state=unknown-format path=%s kept=%s (ignored, starting clean)",
                            path, aside)
            return None
        state = data.get("state")
        return state if isinstance(state, dict) else None

"""The run directory: resolved recipe, metrics.jsonl, privacy ledger and result, written safely."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from zofw.errors import BadInput


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def claim(path: Path) -> Path:
    """Create an empty run directory; refuse a non-empty one so nothing written before is lost."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BadInput(f"run directory {path} already exists and is not empty; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"cannot create run directory {path}: {error.strerror}") from None
    return path


class MetricsLog:
    """Append-only JSON lines, flushed per record so a killed run keeps what it measured."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("a")

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()

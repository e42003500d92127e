"""The run directory: resolved recipe, metrics.jsonl, privacy ledger and result, written safely.

Rules every writer here keeps:
- a file is written whole or not at all (temporary file, then rename), so a crash never leaves half of it;
- JSON is strict JSON: no ``NaN`` or ``Infinity`` tokens ever reach a file (non-finite values become
  ``null`` in metrics, and a record that must be exact, like result.json, is refused naming the key);
- every run file gets the same permissions, those a plain ``open()`` gives (0644 under the usual umask
  022); a secret file gets 0600;
- the directory is checked and claimed before any model loads, and a non-empty one is never reused.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional

from zofw.errors import BadInput, RunFailed, blocking_file, path_problem

SECRET_MODE = 0o600


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(secret: bool = False) -> int:
    """Permissions of a run file: those of a plain ``open()`` (0o666 less the umask), 0600 if secret."""
    return SECRET_MODE if secret else 0o666 & ~umask()


def atomic_write_text(path: Path, text: str, secret: bool = False) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file. The file gets
    :func:`file_mode` permissions (``mkstemp`` alone would give 0600 to some run files and not others)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, file_mode(secret))
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def nonfinite_keys(value: Any, where: str = "") -> list[str]:
    """Key paths (``eval.loss``, ``projected_grad[3]``) of the non-finite floats in ``value``."""
    found, stack = [], [(where, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            found.append(key or "(value)")
        elif isinstance(item, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(item))
    return sorted(found)


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON ``null``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, where: str, indent: Optional[int] = None) -> str:
    """``json.dumps`` that never writes NaN or Infinity: a non-finite value fails naming its key."""
    bad = nonfinite_keys(value)
    if bad:
        raise RunFailed(f"{where}: {', '.join(bad[:3])}{' …' * (len(bad) > 3)} not a finite number; "
                        "not written (strict JSON has no NaN or Infinity)")
    return json.dumps(value, indent=indent, allow_nan=False)


def write_json(path: Path, value: Any, indent: Optional[int] = 1, secret: bool = False) -> None:
    """Strict JSON, written atomically with run-file permissions."""
    atomic_write_text(path, strict_json(value, path.name, indent), secret)


def read_json(path: Path, what: str, max_bytes: int = 64 << 20) -> Any:
    """Strict JSON from ``path`` (a run file, a ledger, a checkpoint's record), or BadInput in one line
    naming the file: missing, unreadable, too large, not UTF-8, invalid, nested too deeply, or holding
    NaN or Infinity (which json.loads would accept)."""
    def refuse_constant(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadInput(f"{path}: larger than {max_bytes >> 20} MiB; not a {what}")
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_constant)
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = path_problem(path, error) if isinstance(error, OSError) else " ".join(str(error).split())[:160]
        raise BadInput(f"{path}: not a {what} ({why})") from None
    except RecursionError:
        raise BadInput(f"{path}: not a {what} (nested too deeply)") from None


def check_finite_parameters(tensors: Iterable[Any], step: int, lr: float) -> None:
    """Raise RunFailed if any trainable tensor holds nan or inf: training has diverged and every later
    step would be wasted. Parameters are a function of released values only, so the check reveals
    nothing about private data. Call with the updates settled (``params.settle()``)."""
    for tensor in tensors:
        if not bool(tensor.isfinite().all()):
            raise RunFailed(f"training diverged: the trainable parameters hold nan or inf after step {step} "
                            f"(train.lr = {lr:g}; a smaller step size, or stronger clipping, may help)")


class MetricsLog:
    """Append-only JSON lines, flushed per record so a killed run keeps what it measured.

    Every line is strict JSON: a non-finite value is written as ``null`` with its key listed under
    ``"nonfinite_keys"``. A non-finite evaluation loss means the model has diverged (or cannot score the
    evaluation data): the record is written, then the run stops with RunFailed naming the step.
    """

    def __init__(self, path: Path, followers: Iterable[Any] = ()) -> None:
        self.path = path
        self.followers = list(followers)  # loggers (TensorBoard, W&B) that see each record as written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, file_mode())
        self.handle = os.fdopen(fd, "a")

    def write(self, record: dict[str, Any]) -> None:
        bad = nonfinite_keys(record)
        line = finite_or_null(record) | ({"nonfinite_keys": bad} if bad else {})
        self.handle.write(json.dumps(line, allow_nan=False) + "\n")
        self.handle.flush()
        for follower in self.followers:
            follower.log(line)
        if "eval.loss" in bad:
            if record.get("step") == 0:
                raise RunFailed(f"the evaluation loss before training is not a finite number (recorded as null in "
                                f"{self.path.name}): the model cannot score the evaluation data")
            raise RunFailed(f"training diverged: the evaluation loss at step {record.get('step')} is not a finite "
                            f"number (recorded as null in {self.path.name}); a smaller train.lr may help")

    def close(self) -> None:
        self.handle.close()
        for follower in self.followers:
            follower.close()
        self.followers = []


# --- the run directory itself ---------------------------------------------------------------------


def _refuse(option: str, path: Path, why: str) -> BadInput:
    return BadInput(f"{option} {path}: {why}")


def check_run_dir(path: Path, option: str = "--out") -> None:
    """Refuse, in one line naming ``option``, a run directory that cannot be used: an existing file, a
    non-empty directory (nothing written before is ever overwritten), a path through a file, a dangling
    link, or a place where it cannot be created or written."""
    try:
        if path.is_symlink() and not path.exists():
            raise _refuse(option, path, "a symbolic link to nothing; choose another --out")
        if path.exists():
            if not path.is_dir():
                raise _refuse(option, path, "exists and is not a directory; choose another --out")
            if any(path.iterdir()):
                raise _refuse(option, path, "already exists and is not empty; choose another --out")
            if not os.access(path, os.W_OK | os.X_OK):
                raise _refuse(option, path, "not writable")
            return
    except OSError as error:
        raise _refuse(option, path, path_problem(path, error)) from None
    except ValueError:
        raise _refuse(option, path, "not a valid path") from None
    blocker = blocking_file(path)
    if blocker is not None:
        raise _refuse(option, path, f"{blocker} is a file, not a directory")
    ancestor = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _refuse(option, path, f"cannot be created: {ancestor} is not writable")


def prepare(path: Path, option: str = "--out") -> list[Path]:
    """Check ``path`` (:func:`check_run_dir`) and create it now, before any model loads, so that an
    unwritable place is found at once (``os.access`` says yes to root even on a read-only disk).
    Returns the directories this call created, deepest last, for :func:`release`."""
    check_run_dir(path, option)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _refuse(option, path, f"cannot be created: {path_problem(path, error)}") from None
    return list(reversed(missing))


def release(created: list[Path]) -> None:
    """Remove the directories :func:`prepare` created if they are still empty (the run stopped before
    writing anything), deepest first; anything with files in it stays."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            return


def fresh(base: Path) -> Path:
    """Create and return ``base``, or ``base-1``, ``base-2``, … if taken: ``mkdir`` is atomic, so two
    runs started in the same second (two processes) never share a directory."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        candidate = base.with_name(f"{base.name}-{n}") if n else base
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise BadInput(f"run directory {base}: 10000 runs of that name in one second; give --out")


def claim(path: Path) -> Path:
    """Create an empty run directory; refuse a non-empty one so nothing written before is lost."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BadInput(f"run directory {path} already exists and is not empty; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"cannot create run directory {path}: {path_problem(path, error)}") from None
    return path

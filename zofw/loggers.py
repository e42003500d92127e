"""Optional experiment trackers (TensorBoard, Weights & Biases) fed with exactly what metrics.jsonl holds.

``metrics.jsonl`` stays the source of truth. A logger is given its records, one dict at a time, and sends
only their numbers: held-out metrics, the noised projected gradients a private run releases anyway, and ε so
far. Nothing un-noised about the training data is in a record, so a private run sends nothing private.

Use it two ways:
- after (or during) a run: ``zofw export RUN_DIR --to tensorboard`` replays metrics.jsonl (``--follow`` keeps
  tailing a live run until its result.json appears);
- inside the loop: ``loggers = make_loggers(["tensorboard"], run_dir, config)`` once, then
  ``log_all(loggers, record)`` wherever a record is appended to metrics.jsonl, and ``close_all(loggers)``.

Neither library is a requirement: asking for one that is not installed is a one-line error (exit 2).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from zofw.errors import BadInput

KNOWN = ("tensorboard", "wandb")


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics record, by tag: eval/<metric>, privacy/epsilon, release/projected_grad_<k>."""
    out: dict[str, float] = {}
    for name, value in (record.get("eval") or {}).items():
        if _number(value):
            out[f"eval/{name}"] = float(value)
    if _number(record.get("epsilon")):
        out["privacy/epsilon"] = float(record["epsilon"])
    grads = record.get("projected_grad")
    if isinstance(grads, list):
        for k, value in enumerate(grads):
            if _number(value):
                out[f"release/projected_grad_{k}"] = float(value)  # noised (private runs): released anyway
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TensorBoardLogger:
    """Scalars into a TensorBoard event file under ``log_dir`` (torch.utils.tensorboard; needs tensorboard)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise BadInput("tensorboard logging needs the tensorboard package (pip install tensorboard)") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, record: dict[str, Any]) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandbLogger:
    """Scalars into a Weights & Biases run (needs wandb; offline mode works without an account)."""

    def __init__(self, run_dir: Path, config: Optional[dict] = None, project: str = "zofw") -> None:
        try:
            import wandb
        except ImportError:
            raise BadInput("wandb logging needs the wandb package (pip install wandb)") from None
        self.run = wandb.init(project=project, name=run_dir.name, dir=str(run_dir), config=config or {})

    def log(self, record: dict[str, Any]) -> None:
        values = scalars(record)
        if values:
            self.run.log(values, step=record["step"])

    def close(self) -> None:
        self.run.finish()


def make_loggers(names: Sequence[str], run_dir: Path, config: Optional[dict] = None) -> list[Any]:
    """One logger per name ("tensorboard" writes RUN_DIR/tensorboard); BadInput for an unknown name."""
    loggers: list[Any] = []
    for name in names:
        if name == "tensorboard":
            loggers.append(TensorBoardLogger(run_dir / "tensorboard"))
        elif name == "wandb":
            loggers.append(WandbLogger(run_dir, config))
        else:
            from zofw.catalog import did_you_mean

            raise BadInput(f"unknown logger '{name}'{did_you_mean(name, KNOWN)} (loggers: {', '.join(KNOWN)})")
    return loggers


def require(names: Sequence[str]) -> None:
    """Refuse, before a run writes anything, a logger whose library is missing or a name that is none."""
    for name in names:
        if name not in KNOWN:
            from zofw.catalog import did_you_mean

            raise BadInput(f"train.report_to: unknown logger '{name}'{did_you_mean(name, KNOWN)} "
                           f"(loggers: {', '.join(KNOWN)})")
        module = {"tensorboard": "tensorboard", "wandb": "wandb"}[name]
        try:
            __import__(module)
        except ImportError:
            raise BadInput(f"train.report_to: {name} logging needs the {module} package "
                           f"(pip install {module})") from None


def log_all(loggers: Sequence[Any], record: dict[str, Any]) -> None:
    for logger in loggers:
        logger.log(record)


def close_all(loggers: Sequence[Any]) -> None:
    for logger in loggers:
        logger.close()


def follow(path: Path, follow_until: Optional[Path] = None, poll: float = 1.0,
           timeout: Optional[float] = None) -> Iterator[dict[str, Any]]:
    """The records of a metrics.jsonl; with ``follow_until`` keep reading new lines until that file exists
    (a live run's result.json) or ``timeout`` seconds pass. A partly written last line waits for its end."""
    start, offset, pending = time.monotonic(), 0, ""
    while True:
        done = follow_until is None or follow_until.exists()
        with path.open("r", encoding="utf-8") as handle:
            handle.seek(offset)
            chunk = handle.read()
            offset = handle.tell()
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise BadInput(f"{path}: a line is not JSON") from None
                if isinstance(record, dict) and isinstance(record.get("step"), int):
                    yield record
        if done or (timeout is not None and time.monotonic() - start > timeout):
            return
        time.sleep(poll)


def export(run_dir: Path, names: Sequence[str], follow_run: bool = False) -> int:
    """Replay RUN_DIR/metrics.jsonl into the named loggers; the number of records sent."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise BadInput(f"{run_dir}: no metrics.jsonl (not a zofw run directory)")
    loggers = make_loggers(names, run_dir)
    count = 0
    try:
        for record in follow(path, run_dir / "result.json" if follow_run else None):
            log_all(loggers, record)
            count += 1
    finally:
        close_all(loggers)
    return count

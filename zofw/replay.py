"""``zofw replay BASE SEEDLOG --out DIR``: rebuild a fine-tune from its base model and seed log.

The seed log's header names the model adapter, the trainable subset, the estimator, the schedule and
the direction generator; each record holds one step's seed, step size and released values. The
replay loads BASE through the same adapter and applies the records with the same update code as
training (``zofw.updater``), then saves the result as a run does: the trained weights
(``adapter/``: a checkpoint, the trained subset or a peft adapter; else ``checkpoints/step-T``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from zofw import checkpoint
from zofw.config import ComponentSpec
from zofw.directions import DIRECTION_GENERATOR
from zofw.errors import BadInput
from zofw.rundir import write_json
from zofw.seedlog import SeedLog
from zofw.updater import Updater


def _component(slot: str, section: dict[str, Any], key: str) -> Any:
    """A component as the seed log's header records it (its resolved options)."""
    from pydantic import ValidationError

    from zofw.plugins import registries

    spec = ComponentSpec(**section)
    entry = registries()[slot].get(spec.name)
    try:
        return entry.component(entry.component.Options(**spec.options()))
    except ValidationError as error:
        raise BadInput(f"{key}: {error.errors()[0]['msg']}") from None


def replay(base: str, seedlog_path: Path, out: Path) -> dict[str, Any]:
    """Apply every update of ``seedlog_path`` to the model at ``base``; write ``out``; return a summary."""
    started = time.time()
    log = SeedLog.read_header(seedlog_path)
    header = log.header
    if header.get("directions") != DIRECTION_GENERATOR:
        raise BadInput(f"{seedlog_path}: directions from '{header.get('directions')}', this zofw draws "
                       f"'{DIRECTION_GENERATOR}'; the replay would not be the same fine-tune")
    model = _component("models", {**header["model"], "path": base}, "seed log model")
    estimator = _component("estimators", header["estimator"], "seed log estimator")
    schedule = _component("schedules", header["schedule"], "seed log schedule")
    model.check()
    model.load(header["task_kind"])
    params = model.trainable()
    if params.names != header["trainable"]:
        raise BadInput(f"{base}: its trainable parameters ({len(params.names)}) are not those the seed log was "
                       f"recorded for ({len(header['trainable'])})")
    estimator.prepare(params)
    train = header["train"]
    updater = Updater(params, estimator, schedule, train["steps"], train["weight_decay"])
    steps = 0
    with torch.inference_mode():
        for record in log.records():
            updater.apply(record.step, record.seed, updater.plan(record.step), record.lr, record.values)
            steps = record.step
    out.mkdir(parents=True, exist_ok=True)
    saved = model.save_trained(out / "adapter")  # as the run saved it
    if not saved:
        checkpoint.save(out, steps, params, estimator.state_dict(), updater.anchor)
    summary = {"steps": steps, "base": base, "seed_log": str(seedlog_path), "out": str(out),
               "bytes_per_step": log.width, **({"adapter": str(out / "adapter")} if saved else {}),
               "seconds": round(time.time() - started, 2)}
    write_json(out / "replay.json", summary)
    return summary


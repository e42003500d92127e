"""Atomic checkpoints of a run: the trainable weights after step t, with what updates carry forward.

A checkpoint is a directory ``checkpoints/step-<t>/`` written under a temporary name and renamed into
place, so a kill at any moment leaves either the previous checkpoint or the new one, never half of
one. It holds ``trainable.safetensors`` (the trainable subset, by parameter name), the estimator's
state (``estimator.pt``, e.g. Adam's moments; absent when empty), the schedule's proximal anchor when
there is one (``anchor.safetensors``) and ``state.json``. Nothing secret is in it: the weights are a
function of released values only, and the secret stream's key is never stored (a resumed private run
draws from a fresh key; see ``zofw.train``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from zofw.errors import BadInput
from zofw.params import TrainableParams
from zofw.rundir import file_mode

FOLDER = "checkpoints"


@dataclass
class Checkpoint:
    step: int
    path: Path


def _tensors(names: list[str], tensors: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    # clones: the trainable tensors are views into one flat buffer, which safetensors will not share
    return {name: tensor.detach().to("cpu").clone().contiguous() for name, tensor in zip(names, tensors)}


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: Path, step: int, params: TrainableParams, estimator_state: dict[str, Any],
         anchor: Optional[list[torch.Tensor]]) -> Checkpoint:
    """Write the checkpoint of step ``step`` atomically, then drop older ones."""
    from safetensors.torch import save_file

    folder = run_dir / FOLDER
    folder.mkdir(exist_ok=True)
    final = folder / f"step-{step:08d}"
    scratch = folder / f".step-{step:08d}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    params.settle()  # a deferred update belongs to this step
    files = [scratch / "trainable.safetensors", scratch / "state.json"]
    save_file(_tensors(params.names, params.tensors), str(files[0]))
    if anchor is not None:
        files.append(scratch / "anchor.safetensors")
        save_file(_tensors(params.names, anchor), str(files[-1]))
    if estimator_state:
        files.append(scratch / "estimator.pt")
        torch.save(estimator_state, files[-1])
    files[1].write_text(json.dumps({"step": step, "names": params.names, "anchor": anchor is not None}))
    for path in files:
        os.chmod(path, file_mode())
        _sync(path)
    if final.exists():  # the same step checkpointed again after a resume: the new one replaces it
        shutil.rmtree(final)
    os.replace(scratch, final)
    for older in folder.glob("step-*"):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return Checkpoint(step, final)


def latest(run_dir: Path) -> Optional[Checkpoint]:
    """The newest complete checkpoint (temporary folders of a killed write are ignored)."""
    found = [Checkpoint(int(path.name.split("-")[1]), path) for path in (run_dir / FOLDER).glob("step-*")
             if (path / "state.json").is_file()]
    return max(found, key=lambda c: c.step, default=None)


def load(checkpoint: Checkpoint, params: TrainableParams) -> tuple[dict[str, Any], Optional[list[torch.Tensor]]]:
    """Copy the checkpoint's weights into ``params``; return the estimator state and the anchor."""
    from safetensors.torch import load_file

    state = json.loads((checkpoint.path / "state.json").read_text())
    if state["names"] != params.names:
        raise BadInput(f"{checkpoint.path}: its trainable parameters are not this model's "
                       f"({len(state['names'])} saved, {len(params.names)} now)")
    params.settle()
    saved = load_file(str(checkpoint.path / "trainable.safetensors"))
    with torch.no_grad():
        for name, tensor in zip(params.names, params.tensors):
            tensor.copy_(saved[name])
    anchor = None
    if state["anchor"]:
        anchored = load_file(str(checkpoint.path / "anchor.safetensors"))
        anchor = [anchored[name].to(tensor.device, tensor.dtype) for name, tensor in zip(params.names, params.tensors)]
    estimator = checkpoint.path / "estimator.pt"
    estimator_state = torch.load(estimator, weights_only=True) if estimator.exists() else {}
    return estimator_state, anchor

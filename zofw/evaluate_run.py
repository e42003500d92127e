"""``zofw eval RUN_DIR``: evaluate the fine-tune a run saved, as the run evaluated it.

The run's resolved recipe (``RUN_DIR/recipe.toml``) gives the model adapter, the task and the evaluation
batch; the weights come from what the run saved at its end (``RUN_DIR/adapter``, see the adapter's
``save_trained``), by the format its ``zofw_fine_tune.json`` names:

- ``full``: a standard checkpoint directory: it becomes ``model.path`` (and ``model.tokenizer``), so the
  base model is not needed at all;
- ``subset``, ``lora``, ``prefix``: the base model of the recipe, then the adapter's ``restore_trained``
  puts the saved trainable subset or peft adapter in place.

A run without such a directory (an adapter that saves nothing) is evaluated from its last checkpoint's
trainable weights (``checkpoints/step-T/trainable.safetensors``) on top of the base model.
Evaluation is on public held-out data, as during the run: it spends no privacy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from zofw.config import read_recipe
from zofw.errors import BadInput

MARKER = "zofw_fine_tune.json"  # written by model adapters' save_trained (zofw_hf.saving)
FINE_TUNE_DIRS = ("adapter", "model")  # where a run (or a replay) saves its fine-tune


def saved_fine_tune(run_dir: Path) -> Optional[tuple[Path, dict[str, Any]]]:
    """The run's saved fine-tune directory and its marker, if it has one."""
    for name in FINE_TUNE_DIRS:
        marker = run_dir / name / MARKER
        if marker.is_file():
            try:
                record = json.loads(marker.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as error:
                raise BadInput(f"{marker}: unreadable: {' '.join(str(error).split())[:120]}") from None
            if not isinstance(record, dict) or record.get("format") not in ("full", "subset", "lora", "prefix"):
                raise BadInput(f"{marker}: not a fine-tune marker (format full, subset, lora or prefix)")
            return run_dir / name, record
    return None


def _task_overrides(recipe_path: Path, task: Optional[str]) -> list[str]:
    """``--task NAME``: the task table replaced by ``{name = NAME}`` unless it is the run's own task."""
    if task is None:
        return []
    current = read_recipe(recipe_path).get("task")
    if isinstance(current, dict) and current.get("name") == task:
        return []
    return [f"task={{name = {json.dumps(task)}}}"]


def run_result(run_dir: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return None


def evaluate_run(run_dir: Path, task: Optional[str], overrides: list[str], load: Callable[..., Any]) -> dict[str, Any]:
    """Metrics of the run's saved fine-tune on the eval split of its task (or of ``task``); ``load`` is
    the CLI's recipe loader (recipe path, overrides, inputs) -> (path, recipe, components)."""
    import torch

    from zofw import checkpoint
    from zofw.evaluate import evaluate

    recipe_path = run_dir / "recipe.toml"
    if not recipe_path.is_file():
        raise BadInput(f"{run_dir}: not a zofw run directory (no recipe.toml)")
    saved = saved_fine_tune(run_dir)
    sets = _task_overrides(recipe_path, task)
    if saved is not None and saved[1]["format"] == "full":  # the saved checkpoint replaces the base model
        where = json.dumps(str(saved[0]))
        sets += [f"model.path={where}", f"model.tokenizer={where}", "model.random_init=false"]
    _, recipe, parts = load(recipe_path, [*sets, *overrides], inputs="all")
    model, evaluated_task = parts.model, parts.task
    torch.manual_seed(recipe.seed)
    examples = evaluated_task.load("eval", recipe.seed)
    if not examples:
        raise BadInput(f"task '{evaluated_task.name}' produced no evaluation examples")
    source: str
    if saved is not None and saved[1]["format"] != "full":
        restore = getattr(model, "restore_trained", None)
        if restore is None:
            raise BadInput(f"{saved[0]}: a {saved[1]['format']} fine-tune, but model '{model.name}' cannot restore one")
        model = restore(saved[0], evaluated_task.kind)
        source = f"{saved[0]} ({saved[1]['format']}, on {saved[1].get('base') or 'the recipe base model'})"
    elif saved is not None:
        model.load(evaluated_task.kind)
        source = f"{saved[0]} (full checkpoint)"
    else:
        latest = checkpoint.latest(run_dir)
        if latest is None:
            raise BadInput(f"{run_dir}: no saved fine-tune ({' or '.join(FINE_TUNE_DIRS)}/{MARKER}) and no checkpoint")
        model.load(evaluated_task.kind)
        checkpoint.load(latest, model.trainable())
        source = f"{latest.path} (trainable weights on the base model)"
    items = model.encode(examples)
    metrics = evaluate(model, evaluated_task, examples, items, recipe.train.eval_batch)
    record: dict[str, Any] = {"run_dir": str(run_dir), "task": evaluated_task.name,
                              "main_metric": evaluated_task.main_metric, "examples": len(examples),
                              "fine_tune": source, "metrics": metrics}
    result = run_result(run_dir)
    if isinstance(result, dict) and isinstance(result.get("metrics"), dict) \
            and evaluated_task.name == _run_task(recipe_path):  # the run's own final metrics, for comparison
        record["run_metrics"] = result["metrics"]
    return record


def _run_task(recipe_path: Path) -> Optional[str]:
    table = read_recipe(recipe_path).get("task")
    return table.get("name") if isinstance(table, dict) else None


def report_lines(record: dict[str, Any]) -> list[str]:
    """What ``zofw eval`` prints without --json."""
    lines = [f"{record['task']} on {record['examples']} eval examples, fine-tune from {record['fine_tune']}"]
    reported = record.get("run_metrics") or {}
    for name, value in record["metrics"].items():
        mark = " *" if name == record["main_metric"] else ""
        line = f"  {name:<10} {value:.4f}{mark}"
        if name in reported and isinstance(reported[name], (int, float)):
            line += f"   (the run reported {reported[name]:.4f})"
        lines.append(line)
    return lines

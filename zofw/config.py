"""Recipes: TOML files validated by pydantic, with ``--set a.b=value`` overrides typed by the schema.

Each component table (``[estimator] name = "dpzero"`` plus options) is validated by that component's
own options model, so a typo fails with the full key path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zofw.errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(BaseModel):
    """A component table: its registry ``name`` plus options that the component's own schema checks."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainConfig(Section):
    steps: int = Field(gt=0)  # optimisation steps T
    expected_batch: float = Field(gt=0)  # E|B| = q·n; Poisson sampling draws batches of this mean size
    # "poisson": each example joins each batch with probability q (add/remove-one; every accountant);
    # "fixed_size": each batch is expected_batch examples drawn without replacement (replace-one, 2C; rdp)
    sampling: Literal["poisson", "fixed_size"] = "poisson"
    lr: float = Field(gt=0)  # step size η
    weight_decay: float = Field(0.0, ge=0)  # not applied to biases and LayerNorm
    eval_every: int = Field(0, ge=0)  # steps between evaluations; 0: only before and after training
    log_every: int = Field(0, ge=0)  # steps between metrics.jsonl records; 0: about 50 per run
    microbatch: int = Field(0, ge=0)  # rows of every training forward (fixed, public); 0: expected_batch rounded up
    eval_batch: int = Field(16, gt=0)  # examples per forward during evaluation


class PrivacyConfig(Section):
    epsilon: Optional[float] = Field(None, gt=0)  # target ε; σ is calibrated with `accountant`
    noise_multiplier: Optional[float] = Field(None, gt=0)  # or give σ directly
    delta: float = Field(1e-5, gt=0, lt=1)
    accountant: str = "prv"  # calibrates σ and reports ε so far
    report: list[str] = ["rdp", "pld", "prv"]  # accountants whose ε the result lists side by side
    max_epsilon: Optional[float] = Field(None, gt=0)  # budget guard: the run stops before ε would exceed it

    @model_validator(mode="after")
    def _one_of_epsilon_or_sigma(self) -> "PrivacyConfig":
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of epsilon (target) or noise_multiplier (σ)")
        return self


class Recipe(Section):
    seed: int = 42  # public randomness: data subsets and directions
    model: ComponentSpec
    task: ComponentSpec
    estimator: ComponentSpec
    clipper: Optional[ComponentSpec] = None
    noise: ComponentSpec = ComponentSpec(name="gaussian")
    schedule: ComponentSpec = ComponentSpec(name="constant")  # step size and λ per step
    privacy: Optional[PrivacyConfig] = None
    train: TrainConfig


def describe(error: ValidationError, prefix: str = "") -> str:
    """One line naming the first problem of a pydantic error by its full key path."""
    first = error.errors()[0]
    path = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "missing required key"
    else:
        message = first["msg"]
        if "input" in first and not isinstance(first["input"], (dict, list)):
            message += f" (got {first['input']!r})"
    more = len(error.errors()) - 1
    return f"{path or '(recipe)'}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"recipe {path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"recipe {path}: is a directory") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadInput(f"recipe {path}: invalid TOML: {error}") from None


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b=value``. Scalars stay strings for pydantic to type by the schema; a value starting
    with ``[``, ``{`` or a quote is parsed as a TOML value (lists, tables, strings with spaces)."""
    key, sep, raw = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise BadInput(f"override {assignment!r}: expected KEY=VALUE with a dotted KEY, e.g. train.steps=20")
    value: Any = raw
    if raw[:1] in "[{\"'" and raw:
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError as error:
            raise BadInput(f"override {assignment!r}: invalid TOML value: {error}") from None
    table = data
    for depth, part in enumerate(parts[:-1]):
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise BadInput(f"override {assignment!r}: '{'.'.join(parts[:depth + 1])}' is not a table")
    table[parts[-1]] = value


def load_recipe(path: Path, overrides: list[str] = ()) -> Recipe:
    data = read_toml(path)
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise BadInput(f"recipe {path}: {describe(error)}") from None

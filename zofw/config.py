"""Recipes: TOML files validated by pydantic, with ``--set a.b=value`` overrides typed by the schema.

Each component table (``[estimator] name = "dpzero"`` plus options) is validated by that component's
own options model, so a typo fails with the full key path.
"""

from __future__ import annotations

import difflib
import math
import stat
import copy
import sys
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zofw.errors import BadInput, path_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


MAX_RECIPE_BYTES = 1 << 20  # a recipe is a few hundred bytes; a bigger file is not a recipe
MAX_DEPTH = 32  # tables and lists nested deeper than this are refused (no recipe nests more than 4)
INT64 = 1 << 63  # every integer of a recipe fits a signed 64-bit integer (TOML's own range)


class Section(BaseModel):
    # allow_inf_nan=False: inf and nan (TOML literals, or "inf" given with --set) are refused by key
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ComponentSpec(BaseModel):
    """A component table: its registry ``name`` plus options that the component's own schema checks."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    name: str = Field(min_length=1)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


MAX_STEPS = 10**9
MAX_ROWS = 1 << 16  # rows of one forward pass


class TrainConfig(Section):
    steps: int = Field(gt=0, le=MAX_STEPS)  # optimisation steps T
    expected_batch: float = Field(gt=0, le=1 << 31)  # E|B| = q·n; Poisson sampling draws batches of this mean size
    # "poisson": each example joins each batch with probability q (add/remove-one; every accountant);
    # "fixed_size": each batch is expected_batch examples drawn without replacement (replace-one, 2C; rdp)
    sampling: Literal["poisson", "fixed_size"] = "poisson"
    lr: float = Field(gt=0)  # step size η
    weight_decay: float = Field(0.0, ge=0)  # not applied to biases and LayerNorm
    eval_every: int = Field(0, ge=0, le=MAX_STEPS)  # steps between evaluations; 0: only before and after training
    log_every: int = Field(0, ge=0, le=MAX_STEPS)  # steps between metrics.jsonl records; 0: about 50 per run
    microbatch: int = Field(0, ge=0, le=MAX_ROWS)  # rows of every training forward (fixed, public); 0: expected_batch rounded up
    eval_batch: int = Field(16, gt=0, le=MAX_ROWS)  # examples per forward during evaluation
    # steps between checkpoints of the trainable weights (0: only at the end); a seed-log estimator can
    # resume from its seed log alone, so checkpoints only shorten the replay
    checkpoint_every: int = Field(0, ge=0, le=MAX_STEPS)
    # also send every metrics.jsonl record (released values only) to these: "tensorboard", "wandb"
    report_to: list[Literal["tensorboard", "wandb"]] = []


class PrivacyConfig(Section):
    epsilon: Optional[float] = Field(None, gt=0)  # target ε; σ is calibrated with `accountant`
    noise_multiplier: Optional[float] = Field(None, gt=0)  # or give σ directly
    delta: float = Field(1e-5, gt=0, lt=1)
    accountant: str = Field("prv", min_length=1)  # calibrates σ and reports ε so far
    # accountants whose ε the result lists side by side
    report: list[str] = Field(["rdp", "pld", "prv"], min_length=1)
    max_epsilon: Optional[float] = Field(None, gt=0)  # budget guard: the run stops before ε would exceed it

    @model_validator(mode="after")
    def _one_of_epsilon_or_sigma(self) -> "PrivacyConfig":
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give exactly one of epsilon (target) or noise_multiplier (σ)")
        return self


class Recipe(Section):
    seed: int = Field(42, ge=0, lt=INT64)  # public randomness: data subsets and directions
    model: ComponentSpec
    task: ComponentSpec
    estimator: ComponentSpec
    clipper: Optional[ComponentSpec] = None
    noise: ComponentSpec = ComponentSpec(name="gaussian")
    schedule: ComponentSpec = ComponentSpec(name="constant")  # step size and λ per step
    privacy: Optional[PrivacyConfig] = None
    train: TrainConfig


def known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the table at ``loc`` (inside ``model``) accepts, for a "did you mean" hint."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def describe(error: ValidationError, prefix: str = "", model: Optional[type[BaseModel]] = None) -> str:
    """One line naming the first problem of a pydantic error by its full key path."""
    first = error.errors()[0]
    path = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        if model is not None:
            close = difflib.get_close_matches(str(first["loc"][-1]), known_keys(model, first["loc"][:-1]), n=1)
            message += f" (did you mean '{close[0]}'?)" if close else ""
    elif first["type"] == "missing":
        message = "missing required key"
    else:
        message = first["msg"]
        if "input" in first and not isinstance(first["input"], (dict, list)):
            shown = repr(first["input"])
            message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
    more = len(error.errors()) - 1
    return f"{path or '(recipe)'}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def check_values(data: Any, where: str = "") -> None:
    """Refuse what no schema should ever see, naming the key: inf and nan, integers beyond 64 bits, NUL
    characters in strings, and tables or lists nested deeper than ``MAX_DEPTH`` (iterative: any depth)."""
    stack: list[tuple[str, Any, int]] = [(where, data, 0)]
    while stack:
        key, value, depth = stack.pop()
        shown = key or "(recipe)"
        if depth > MAX_DEPTH:
            raise BadInput(f"{shown}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"{shown}: must be a finite number (got {value})")
        if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
            raise BadInput(f"{shown}: {str(value)[:24]}{'...' * (len(str(value)) > 24)} does not fit 64 bits")
        if isinstance(value, str) and "\0" in value:
            raise BadInput(f"{shown}: contains a NUL character")
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v, depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{key}[{i}]", v, depth + 1) for i, v in enumerate(value))


def read_toml(path: Path) -> dict[str, Any]:
    """The recipe file's TOML, or one line saying why not: missing, a directory, a path through a file,
    unreadable, not a regular file (a device would be read forever), too large, not UTF-8, invalid TOML."""
    where = f"recipe {path}"
    try:
        info = path.stat()
    except (OSError, ValueError) as error:
        raise BadInput(f"{where}: {path_problem(path, error)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{where}: is a directory")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):  # a FIFO: zofw run <(...)
        raise BadInput(f"{where}: not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RECIPE_BYTES + 1)
    except OSError as error:
        raise BadInput(f"{where}: {path_problem(path, error)}") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise BadInput(f"{where}: larger than {MAX_RECIPE_BYTES // 1024} KiB; not a recipe")
    try:
        text = raw.decode("utf-8-sig")  # -sig: tolerate a byte-order mark
        return tomllib.loads(text)
    except UnicodeDecodeError as error:
        raise BadInput(f"{where}: not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{where}: invalid TOML: {error}") from None
    except RecursionError:
        raise BadInput(f"{where}: invalid TOML: values nested too deeply") from None


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b=value``. Scalars stay strings for pydantic to type by the schema; a value starting
    with ``[``, ``{`` or a quote is parsed as a TOML value (lists, tables, strings with spaces), and must
    be one value: text after it (``[1] x = 2``) is refused, never dropped."""
    key, sep, raw = assignment.partition("=")
    shown = repr(assignment) if len(assignment) <= 80 else repr(assignment[:77]) + "..."
    parts = [part.strip() for part in key.split(".")]
    if not sep or not all(parts):
        raise BadInput(f"override {shown}: expected KEY=VALUE with a dotted KEY, e.g. train.steps=20")
    raw = raw.strip()
    value: Any = raw
    if raw[:1] in "[{\"'" and raw:
        try:
            parsed = tomllib.loads(f"v = {raw}")
        except tomllib.TOMLDecodeError as error:
            raise BadInput(f"override {shown}: invalid TOML value: {error}") from None
        except RecursionError:
            raise BadInput(f"override {shown}: invalid TOML value: nested too deeply") from None
        if list(parsed) != ["v"]:
            raise BadInput(f"override {shown}: text after the value; give one value per --set")
        value = parsed["v"]
    table = data
    for depth, part in enumerate(parts[:-1]):
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise BadInput(f"override {shown}: '{'.'.join(parts[:depth + 1])}' is not a table")
    table[parts[-1]] = value


MAX_EXTENDS = 16  # recipes in one `extends` chain (the shipped ones use two or three)


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` laid over ``base``: tables are merged key by key, any other value of the child wins."""
    merged = dict(base)
    for key, value in child.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe file with its ``extends = "base.toml"`` chain resolved: each path is relative to the
    recipe that names it, bases are deep-merged under their children (the child wins), and a cycle or an
    over-long chain is refused in one line."""
    chain, layers, current = [path], [], path
    while True:
        data = read_toml(current)
        parent = data.pop("extends", None)
        layers.append(data)
        if parent is None:
            break
        if not isinstance(parent, str) or not parent or "\0" in parent:
            raise BadInput(f"recipe {current}: extends: must be the path of a base recipe (got {parent!r:.60})")
        current = current.parent / parent
        try:
            seen = [p.resolve() for p in chain].index(current.resolve())
        except (OSError, ValueError, RuntimeError):  # unresolvable: read_toml says why
            seen = -1
        if seen >= 0:
            raise BadInput(f"recipe {path}: extends cycle: {' -> '.join(str(p) for p in chain[seen:] + [current])}")
        chain.append(current)
        if len(chain) > MAX_EXTENDS:
            raise BadInput(f"recipe {path}: extends chain longer than {MAX_EXTENDS} recipes")
    merged: dict[str, Any] = {}
    try:
        for layer in reversed(layers):
            merged = merge(merged, layer)
    except RecursionError:
        raise BadInput(f"recipe {path}: tables nested too deeply to merge with its base") from None
    return merged


def load_recipe(path: Path, overrides: Sequence[str] = ()) -> Recipe:
    return recipe_from(read_recipe(path), str(path), overrides)


def recipe_from(data: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Recipe:
    """A validated recipe from TOML-shaped data (a file's, or a dict given to the Python API)."""
    data = copy.deepcopy(data)
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        check_values(data)
    except BadInput as error:
        raise BadInput(f"recipe {source}: {error}") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise BadInput(f"recipe {source}: {describe(error, model=Recipe)}") from None

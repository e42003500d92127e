"""Turn a validated recipe into components, each built from its own options schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from zofw.config import ComponentSpec, Recipe, check_values, describe
from zofw.errors import BadInput, path_problem
from zofw.plugins import broken_plugins, registries
from zofw.privacy.release import check_mechanism
from zofw.slots.accountant import Accountant
from zofw.slots.base import Component
from zofw.slots.clipper import Clipper
from zofw.slots.estimator import Estimator
from zofw.slots.model import ModelAdapter
from zofw.slots.noise import Noise
from zofw.slots.schedule import Schedule
from zofw.slots.task import Task


@dataclass
class Components:
    model: ModelAdapter
    task: Task
    estimator: Estimator
    clipper: Optional[Clipper]
    noise: Optional[Noise]
    accountants: dict[str, Accountant]  # by name: the calibrating one and every reported one
    schedule: Schedule


def unusable_path(spec: ComponentSpec, key: str, error: BaseException) -> str:
    """A component check that met a path it cannot even look at (a name too long, a NUL), as one line
    naming the option that holds it."""
    filename = str(getattr(error, "filename", "") or "")
    named = next((name for name, value in spec.options().items()
                  if isinstance(value, str) and filename and Path(value).expanduser().as_posix() == filename), None)
    where = f"{key}.{named}" if named else key
    shown = filename if len(filename) <= 60 else filename[:40] + "…" + filename[-15:]
    why = path_problem(Path(filename), error) if isinstance(error, OSError) else str(error)
    return f"{where}: {shown + ': ' if shown else ''}{why}"


def build(recipe: Recipe, source: str) -> Components:
    """Build every component of ``recipe``; bad names or options raise BadInput naming the key path."""
    slots = registries()

    def make(slot: str, spec: ComponentSpec, key: str) -> Component:
        try:
            entry = slots[slot].get(spec.name)
        except BadInput as error:
            broken = broken_plugins()
            hint = f"; skipped plugin{'s' * (len(broken) > 1)}: " + "; ".join(
                f"'{name}' ({why})" for name, why in broken.items()) if broken else ""
            raise BadInput(f"recipe {source}: {key}.name: {error}{hint}") from None
        try:
            options = entry.component.Options.model_validate(spec.options())
        except ValidationError as error:
            raise BadInput(f"recipe {source}: {describe(error, key, entry.component.Options)}") from None
        except RecursionError:
            raise BadInput(f"recipe {source}: {key}: options nested too deeply") from None
        try:  # whatever the component's schema let through: inf, nan, integers beyond 64 bits
            check_values(options.model_dump(), key)
        except BadInput as error:
            raise BadInput(f"recipe {source}: {error}") from None
        component = entry.component(options)
        try:
            component.check()
        except BadInput as error:
            raise BadInput(f"recipe {source}: {error}") from None  # check() names the key path itself
        except (OSError, ValueError) as error:  # a check that met a path it cannot even look at
            raise BadInput(f"recipe {source}: {unusable_path(spec, key, error)}") from None
        return component

    estimator = make("estimators", recipe.estimator, "estimator")
    clipper = noise = None
    accountants: dict[str, Accountant] = {}
    if estimator.private:
        if recipe.privacy is None or recipe.clipper is None:
            raise BadInput(f"recipe {source}: estimator '{estimator.name}' is private: "
                           "the recipe needs a [privacy] and a [clipper] table")
        clipper = make("clippers", recipe.clipper, "clipper")
        noise = make("noise", recipe.noise, "noise")
        check_mechanism(estimator, noise)  # type: ignore[arg-type]
        names = [recipe.privacy.accountant, *recipe.privacy.report]
        for name in dict.fromkeys(names):
            key = "privacy.accountant" if name == recipe.privacy.accountant else "privacy.report"
            accountants[name] = make("accountants", ComponentSpec(name=name), key)  # type: ignore[assignment]
            if noise.mechanism not in accountants[name].mechanisms:
                raise BadInput(f"{key}: accountant '{name}' cannot compose {noise.mechanism} noise (it composes "
                               f"{', '.join(accountants[name].mechanisms)}); choose another or change noise.name")
            if recipe.train.sampling not in accountants[name].samplings:  # sampling must match the accountant
                raise BadInput(f"{key}: accountant '{name}' does not model {recipe.train.sampling} sampling (it "
                               f"models {', '.join(accountants[name].samplings)}); choose another or change "
                               "train.sampling")
    elif recipe.privacy is not None or recipe.clipper is not None or "noise" in recipe.model_fields_set:
        given = [f"[{table}]" for table in ("privacy", "clipper", "noise")
                 if getattr(recipe, table) is not None and (table != "noise" or "noise" in recipe.model_fields_set)]
        raise BadInput(f"recipe {source}: estimator '{estimator.name}' is not private, so {', '.join(given)} "
                       f"would be ignored: remove {'them' if len(given) > 1 else 'it'}, or choose a private estimator")
    schedule = make("schedules", recipe.schedule, "schedule")
    if schedule.changes_smoothing() and not estimator.follows_smoothing_schedule:  # type: ignore[attr-defined]
        raise BadInput(f"recipe {source}: schedule '{schedule.name}' changes λ, which estimator "
                       f"'{estimator.name}' does not follow (keep its λ fixed, e.g. smoothing_decay = 1)")
    return Components(
        model=make("models", recipe.model, "model"),  # type: ignore[arg-type]
        task=make("tasks", recipe.task, "task"),  # type: ignore[arg-type]
        estimator=estimator,  # type: ignore[arg-type]
        clipper=clipper,  # type: ignore[arg-type]
        noise=noise,  # type: ignore[arg-type]
        accountants=accountants,
        schedule=schedule,  # type: ignore[arg-type]
    )

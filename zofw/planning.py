"""What a run decides before its first step: the training examples and their sampling, the secret
source, σ (given or calibrated), the private release and the ledger, and the resolved recipe."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from zofw.assemble import Components
from zofw.config import Recipe
from zofw.errors import BadInput
from zofw.privacy.calibrate import affordable_steps, calibrate_with
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import NoPrivacy, PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.sampling import Sampling


# Test-only: a reproducible "secret". Read from the environment, never from a recipe, never written down;
# a run that uses it is marked not private.
INSECURE_SECRET_ENV = "ZOFW_INSECURE_TEST_SECRET"


def secret_source() -> SecretStream:
    """The run's secret randomness: a fresh OS-keyed CSPRNG, or the test-only reproducible stream."""
    value = os.environ.get(INSECURE_SECRET_ENV)
    if value is None:
        return SecretStream()
    try:
        return SecretStream.for_testing(int(value))
    except ValueError:
        raise BadInput(f"{INSECURE_SECRET_ENV}: expected an integer, got {value!r}") from None


@dataclass
class Privacy:
    """What the run decided about privacy before its first step."""

    release: PrivateRelease | NoPrivacy
    ledger: Optional[PrivacyLedger]
    noise_multiplier: Optional[float]
    affordable_steps: Optional[int] = None  # privacy.max_epsilon: the steps the budget pays for


def plan_privacy(recipe: Recipe, parts: Components, sampling: Sampling, source: SecretStream,
                 ledger_path: Path, parameter_count: Optional[int] = None) -> Privacy:
    """Calibrate σ for the target ε (or take σ as given) and set up the private release."""
    divisor = recipe.train.expected_batch
    if not parts.estimator.private:
        return Privacy(NoPrivacy(divisor, parts.estimator.directions()), None, None)
    settings, steps = recipe.privacy, recipe.train.steps
    assert settings is not None and parts.clipper is not None and parts.noise is not None
    sigma = recipe_sigma(recipe, parts, sampling)
    affordable = None
    if settings.max_epsilon is not None:  # computed once from the planned schedule: no accounting per step
        accountant, noise = parts.accountants[settings.accountant], parts.noise
        affordable = affordable_steps(lambda t: accountant.epsilon([noise.event(sigma, sampling, t)] if t else [],
                                                                   settings.delta), steps, settings.max_epsilon)
    ledger = PrivacyLedger(settings.delta)
    release = PrivateRelease(parts.clipper, parts.noise, sigma, sampling, parts.estimator, divisor,
                             source, ledger, ledger_path, parameter_count)
    return Privacy(release, ledger, sigma, affordable)


def training_examples(recipe: Recipe, parts: Components) -> tuple[list, Sampling]:
    """The task's training examples and how batches are drawn from them (q = E|B| / n ≤ 1)."""
    examples = parts.task.load("train", recipe.seed)
    if not examples:
        raise BadInput(f"task '{parts.task.name}' produced no training examples")
    return examples, Sampling.of(recipe.train.sampling, recipe.train.expected_batch, len(examples))


def plan_privacy_schedule(recipe: Recipe, parts: Components) -> tuple[list, float]:
    """The ledger a run of ``recipe`` will write (σ calibrated as the run would), without a model."""
    if not parts.estimator.private or recipe.privacy is None:
        return [], 0.0
    _, sampling = training_examples(recipe, parts)
    assert parts.noise is not None
    sigma = recipe_sigma(recipe, parts, sampling)
    return [parts.noise.event(sigma, sampling, recipe.train.steps)], recipe.privacy.delta


def recipe_sigma(recipe: Recipe, parts: Components, sampling: Sampling) -> float:
    """σ as the recipe gives it, or calibrated by its accountant for its target ε over its steps."""
    settings, noise = recipe.privacy, parts.noise
    assert settings is not None and noise is not None
    if settings.noise_multiplier is not None:
        return settings.noise_multiplier
    assert settings.epsilon is not None
    return calibrate_with(parts.accountants[settings.accountant],
                          lambda s: [noise.event(s, sampling, recipe.train.steps)], settings.epsilon, settings.delta)


def epsilons(parts: Components, ledger: PrivacyLedger, names: Sequence[str]) -> dict[str, float]:
    return {name: parts.accountants[name].epsilon(ledger.events, ledger.delta) for name in names}


def privacy_record(recipe: Recipe, parts: Components, privacy: Privacy, sampling: Sampling,
                   reported: list[str], source: SecretStream) -> dict[str, Any]:
    if privacy.ledger is None:
        return {"private": False, "delta": None, "epsilon": {}, "sample_rate": sampling.sample_rate}
    assert recipe.privacy is not None
    spent = epsilons(parts, privacy.ledger, reported)
    record: dict[str, Any] = {"private": not source.reproducible}
    if source.reproducible:
        record["not_private_because"] = (f"{INSECURE_SECRET_ENV} made the batches and the noise reproducible "
                                         "by anyone who knows its value (a test-only mode)")
    return record | {
        "delta": privacy.ledger.delta,
        "epsilon": {name: (value if math.isfinite(value) else None) for name, value in spent.items()},
        "target_epsilon": recipe.privacy.epsilon,
        "calibrated_with": recipe.privacy.accountant if recipe.privacy.epsilon is not None else None,
        "noise_multiplier": privacy.noise_multiplier,
        "sample_rate": sampling.sample_rate,
        "sampling": sampling.scheme,
        # n is public: q = E|B| / n and σ reveal it; the guarantee is about which examples are in the data
        "dataset_size": sampling.dataset_size,
        "dataset_size_is_public": True,
        "clip_bound": parts.clipper.options.bound if parts.clipper is not None else None,
        "steps": privacy.ledger.steps,
        "neighbouring": sampling.neighbouring,
    }


def resolved_recipe(recipe: Recipe, parts: Components) -> dict[str, Any]:
    """The recipe with every component's defaults filled in, as TOML-ready data (None left out)."""
    data = recipe.model_dump(mode="json", exclude_none=True)
    for key, component in [("model", parts.model), ("task", parts.task), ("estimator", parts.estimator),
                           ("clipper", parts.clipper), ("noise", parts.noise), ("schedule", parts.schedule)]:
        if component is not None:
            data[key] = {"name": component.name, **component.recorded_options()}
    if parts.noise is None:
        data.pop("noise", None)
    return data

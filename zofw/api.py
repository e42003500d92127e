"""The Python API: what the CLI does, callable from a script or a notebook, and an optimizer-style entry
for people with their own training loop. One implementation: the CLI's ``zofw run`` goes through
:func:`run` too, and :class:`PrivateZeroOrder` uses the same estimators, release, ledger, accountants
and update code as a recipe's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch

from zofw.config import Recipe, load_recipe, recipe_from
from zofw.errors import BadInput

RecipeLike = Union[str, Path, Mapping[str, Any], Recipe, None]


@dataclass
class Result:
    """What a finished run gives back (``record`` is result.json)."""

    record: dict[str, Any]
    run_dir: Path
    model: Any = field(repr=False, default=None)  # the fine-tuned model (the adapter's torch module)

    @property
    def metrics(self) -> dict[str, float]:
        return self.record["metrics"]

    @property
    def metrics_before(self) -> dict[str, float]:
        return self.record["metrics_before"]

    @property
    def epsilon(self) -> dict[str, Optional[float]]:
        """ε per reported accountant (empty for a non-private run)."""
        return self.record["privacy"]["epsilon"]

    @property
    def ledger(self) -> Any:
        from zofw.privacy.ledger import PrivacyLedger

        path = self.run_dir / "privacy_ledger.json"
        return PrivacyLedger.load(path) if path.exists() else None


def load(recipe: RecipeLike = None, overrides: Sequence[str] = ()) -> tuple[Recipe, str]:
    """A validated recipe from a path, a TOML-shaped dict, a Recipe, or None (the built-in quickstart)."""
    if isinstance(recipe, Recipe):
        return (recipe_from(recipe.model_dump(mode="json", exclude_none=True), "the given Recipe", overrides)
                if overrides else recipe), "the given Recipe"
    if isinstance(recipe, Mapping):
        return recipe_from(dict(recipe), "the given dict", overrides), "the given dict"
    if recipe is None:
        from zofw.cli import quickstart_path

        return load_recipe(quickstart_path(), overrides), "the built-in quickstart recipe"
    return load_recipe(Path(recipe), overrides), str(recipe)


def training(recipe: RecipeLike = None, overrides: Sequence[str] = (), out: Union[str, Path, None] = None) -> Any:
    """A run ready to step (``zofw.train.Training``): ``step()``, ``evaluate()``, ``checkpoint()``,
    ``finish()``, or ``run_to_end()``. ``out`` defaults to ``runs/NAME-TIME``."""
    from zofw.assemble import build
    from zofw.train import Training

    loaded, source = load(recipe, overrides)
    parts = build(loaded, source)
    return Training(loaded, parts, _run_dir(out, source), source)


def run(recipe: RecipeLike = None, overrides: Sequence[str] = (), out: Union[str, Path, None] = None) -> Result:
    """Train as the recipe says (as ``zofw run`` does) and return the result with the fine-tuned model."""
    stepping = training(recipe, overrides, out)
    record = stepping.run_to_end()
    return Result(record, stepping.out, stepping.params.module)  # the module the trainable weights live in


def _run_dir(out: Union[str, Path, None], source: str) -> Path:
    if out is not None:
        return Path(out)
    from zofw.cli import fresh_run_dir

    return fresh_run_dir(Path(source).stem if source.endswith(".toml") else "run")


# --- your own loop ----------------------------------------------------------------------------------


def _component(slot: str, name: str, options: Mapping[str, Any]) -> Any:
    from pydantic import ValidationError

    from zofw.config import describe
    from zofw.plugins import registries

    entry = registries()[slot].get(name)
    try:
        component = entry.component(entry.component.Options(**options))
    except ValidationError as error:
        raise BadInput(f"{slot} '{name}': {describe(error)}") from None
    component.check()
    return component


class PrivateZeroOrder:
    """DPZero (or any registered estimator) for your own training loop and any torch model.

    ``losses`` passed to :meth:`step` returns the per-example losses (shape (B,)) of the current batch at
    the model's current parameters; the estimator calls it once per probe. Draw each batch with
    :meth:`sample` (Poisson from the secure stream, as the accountant assumes: the guarantee does not
    hold for batches drawn any other way), and keep every forward's shape independent of which examples
    are in it (pad to fixed rows, as ``zofw.batching`` does). Each :meth:`step` samples nothing itself:
    it probes, records the release in the ledger, clips, adds noise and updates, exactly like a recipe's
    run; ε so far is :meth:`epsilon`.

        opt = PrivateZeroOrder(model, dataset_size=len(data), expected_batch=64, steps=1000, lr=1e-6,
                               epsilon=2.0, clip=200.0)
        for _ in range(opt.steps):
            batch = [data[i] for i in opt.sample()]
            opt.step(lambda: per_example_losses(model, batch))
    """

    def __init__(self, model: torch.nn.Module, *, dataset_size: int, expected_batch: float, steps: int, lr: float,
                 epsilon: Optional[float] = None, noise_multiplier: Optional[float] = None, delta: float = 1e-5,
                 clip: float = 1.0, estimator: str = "dpzero", estimator_options: Mapping[str, Any] = (),
                 trainable: str = "all", clipper: str = "scalar", noise: str = "gaussian", accountant: str = "prv",
                 weight_decay: float = 0.0, seed: int = 0, ledger_path: Union[str, Path, None] = None) -> None:
        from zofw.params import TrainableParams
        from zofw.planning import secret_source
        from zofw.privacy.calibrate import calibrate_with
        from zofw.privacy.ledger import PrivacyLedger
        from zofw.privacy.release import NoPrivacy, PrivateRelease
        from zofw.sampling import Sampling
        from zofw.updater import Updater

        if steps < 1 or not lr > 0:
            raise BadInput("PrivateZeroOrder: steps must be ≥ 1 and lr > 0")
        self.model, self.steps, self.lr, self.seed = model, steps, lr, seed
        self.estimator = _component("estimators", estimator, dict(estimator_options))
        self.params = TrainableParams.select(model, trainable)
        if not self.params.names:
            raise BadInput(f"PrivateZeroOrder: trainable = {trainable!r} selects no parameters")
        self.estimator.prepare(self.params)
        self.sampling = Sampling.of("poisson", expected_batch, dataset_size)
        self.secret = secret_source()
        self.sampler = self.sampling.sampler(self.secret)
        self.accountant = _component("accountants", accountant, {})
        self.ledger: Optional[PrivacyLedger] = None
        if self.estimator.private:
            if (epsilon is None) == (noise_multiplier is None):
                raise BadInput("PrivateZeroOrder: give exactly one of epsilon (target) or noise_multiplier (σ)")
            self.clipper = _component("clippers", clipper, {"bound": clip})
            self.noise = _component("noise", noise, {})
            sigma = noise_multiplier if noise_multiplier is not None else calibrate_with(
                self.accountant, lambda s: [self.noise.event(s, self.sampling, steps)], epsilon, delta)
            self.noise_multiplier = sigma
            self.ledger = PrivacyLedger(delta)
            self.release: Any = PrivateRelease(self.clipper, self.noise, sigma, self.sampling, self.estimator,
                                               expected_batch, self.secret, self.ledger,
                                               Path(ledger_path) if ledger_path else None, self.params.numel())
        else:
            self.release = NoPrivacy(expected_batch, self.estimator.directions())
        from zofw.plugins import registries

        constant = registries()["schedules"].get("constant").component
        self.updater = Updater(self.params, self.estimator, constant(constant.Options()), steps, weight_decay)
        self.completed = 0

    def sample(self) -> list[int]:
        """The indices of the next step's batch: Poisson at q = expected_batch / dataset_size."""
        self.secret.enter_step(self.completed + 1)
        return self.sampler.sample()

    def step(self, losses: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One private step on the batch ``losses`` scores; returns the released coefficient(s)."""
        from zofw.directions import stream_seed

        if self.completed >= self.steps:
            raise BadInput(f"PrivateZeroOrder: all {self.steps} planned steps are taken (σ was calibrated for them)")
        step = self.completed + 1
        seed = stream_seed(self.seed, step)
        plan = self.updater.plan(step)
        with torch.inference_mode():
            measured = self.estimator.per_example(self.params, losses, seed)
            released = self.release.privatize(measured)
            self.updater.apply(step, seed, plan, self.lr * plan.lr_factor, released.coefficients,
                               released.parameter_noise)
            released.check_complete(self.params)
        self.params.settle()
        self.completed = step
        return released.coefficients

    def epsilon(self, accountant: Optional[str] = None) -> float:
        """ε spent so far, by this optimizer's accountant or another registered one."""
        if self.ledger is None:
            return 0.0
        chosen = self.accountant if accountant is None else _component("accountants", accountant, {})
        return chosen.epsilon(self.ledger.events, self.ledger.delta)

"""The training loop: one zeroth-order step reads top to bottom like the algorithm."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import tomli_w
import torch
from tqdm import tqdm

from zofw.assemble import Components
from zofw.config import Recipe
from zofw.directions import stream_seed
from zofw.errors import BadInput
from zofw.batching import default_rows
from zofw.evaluate import evaluate, per_example_losses
from zofw.privacy.calibrate import affordable_steps, calibrate_with
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import NoPrivacy, PrivateRelease
from zofw.privacy.running import RunningEpsilon, log_marks
from zofw.privacy.secure import SecretStream
from zofw.rundir import MetricsLog, atomic_write_text, claim
from zofw.sampling import Sampling
from zofw.slots.estimator import LossFn, UpdateContext
from zofw.slots.model import ModelAdapter


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


def batch_losses(model: ModelAdapter, items: Sequence[Any], rows: int) -> LossFn:
    """Per-example losses of a batch at the current parameters, each in a forward of a public shape."""
    return lambda: per_example_losses(model, items, rows)


def epsilons(parts: Components, ledger: PrivacyLedger, names: Sequence[str]) -> dict[str, float]:
    return {name: parts.accountants[name].epsilon(ledger.events, ledger.delta) for name in names}


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


def run(recipe: Recipe, parts: Components, out: Path, source: str) -> dict[str, Any]:
    """Train as ``recipe`` says, writing the run directory ``out``; return the result record."""
    started = time.time()
    torch.manual_seed(recipe.seed)
    train, task, model, estimator = recipe.train, parts.task, parts.model, parts.estimator

    # --- data, model and privacy: everything that can fail on bad input, before writing anything --
    train_examples, sampling = training_examples(recipe, parts)
    eval_examples = task.load("eval", recipe.seed)
    if not eval_examples:
        raise BadInput(f"task '{task.name}' produced no evaluation examples")
    if estimator.private and task.evaluates_on_private_data():
        raise BadInput("task.path: a private run would report un-noised metrics of a held-out part of its private "
                       "training file; give task.eval_path, or set task.held_out_public = true if that part is public")
    model.load(task.kind)
    params = model.trainable()
    parts.estimator.prepare(params)
    train_items, eval_items = model.encode(train_examples), model.encode(eval_examples)
    rows = train.microbatch or default_rows(train.expected_batch)  # public: every training forward has these rows
    # one secure stream for the batches and the released noise; its key never leaves this process
    secret = secret_source()
    privacy = plan_privacy(recipe, parts, sampling, secret, out / "privacy_ledger.json", params.numel())
    sampler = sampling.sampler(secret)

    claim(out)
    resolved = resolved_recipe(recipe, parts)
    atomic_write_text(out / "recipe.toml", f"# resolved from {source}\n" + tomli_w.dumps(resolved))
    log = MetricsLog(out / "metrics.jsonl")
    log_every = train.log_every or max(1, train.steps // 50)
    reported = list(recipe.privacy.report) if recipe.privacy else []
    # ε so far at every log record: the planned schedule's curve, computed once (zofw.privacy.running)
    running = None
    if privacy.ledger is not None:
        assert recipe.privacy is not None and isinstance(privacy.release, PrivateRelease)
        running = RunningEpsilon(parts.accountants[recipe.privacy.accountant], privacy.release.event(),
                                 privacy.ledger.delta, log_marks(train.steps, log_every))
        budget = recipe.privacy.max_epsilon or recipe.privacy.epsilon

    metrics_before = evaluate(model, task, eval_examples, eval_items, train.eval_batch)
    log.write({"step": 0, "eval": metrics_before})
    shown = {"eval_loss": metrics_before["loss"]}
    bar = tqdm(range(1, train.steps + 1), desc=f"{estimator.name} on {task.name}", unit="step",
               dynamic_ncols=True, mininterval=0.5)
    stepping = 0.0  # seconds spent in steps, evaluations and accounting excluded
    anchor: Optional[list[torch.Tensor]] = None  # θ at the start of the schedule's stage (proximal pull)
    completed, stopped = 0, None
    # each update is fused into the next step's first forward pass over the weights (zofw.just_in_time)
    with params.deferred_updates():
        for step in bar:
            if privacy.affordable_steps is not None and step > privacy.affordable_steps:
                stopped = (f"privacy budget: step {step} would spend more than privacy.max_epsilon = "
                           f"{recipe.privacy.max_epsilon:g} ({recipe.privacy.accountant}); stopped after step {step - 1}")
                tqdm.write(stopped, file=sys.stderr)
                break
            completed = step
            tick = time.perf_counter()
            # 1. sample a batch as the accountant assumes (Poisson by default)
            batch = [train_items[i] for i in sampler.sample()]
            # 2. probe the loss along the public direction u(seed): perturb, forward twice; the schedule
            # (public) sets this step's step size and λ
            seed = stream_seed(recipe.seed, step)
            plan = parts.schedule.plan(step, train.steps)
            estimator.smoothing_factor = plan.smoothing_factor
            if plan.proximal and (plan.new_anchor or anchor is None):
                anchor = params.snapshot()
            with torch.inference_mode():
                measured = estimator.per_example(params, batch_losses(model, batch, rows), seed)
                # 3–4. account (ledger on disk first), drop non-finite values, clip, sum, add noise where the
                # estimator declares it, divide by the expected (public) batch size
                released = privacy.release.privatize(measured)
                # 5. restore and update θ ← θ − η·(ĝ·u + wd·θ)
                lr = train.lr * plan.lr_factor
                estimator.update(params, seed, released.coefficients,
                                 UpdateContext(step, lr, train.weight_decay, released.parameter_noise))
                released.check_complete(params)
                if plan.proximal and anchor is not None:  # post-processing of released values: no privacy cost
                    params.pull_toward_(anchor, lr * plan.proximal)
            stepping += time.perf_counter() - tick
            # 6. report: what was released (post-processing), never the training loss of a private run
            if step % log_every == 0 or step == train.steps:
                record: dict[str, Any] = {"step": step}
                if released.public is not None:
                    record["projected_grad"] = released.public.tolist()
                if privacy.ledger is None and measured.loss is not None and len(batch):
                    record["train_loss"] = shown["train_loss"] = float(measured.loss.float().mean())
                    record["nonfinite"] = released.nonfinite
                if running is not None and privacy.ledger is not None:
                    record["epsilon"] = spent = running.after(privacy.ledger)
                    shown["ε"] = f"{spent:.3g}" + (f"/{budget:g}" if budget else "")  # the spend in the bar
                log.write(record)
                bar.set_postfix({k: v if isinstance(v, str) else f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            if train.eval_every and step % train.eval_every == 0 and step != train.steps:
                params.settle()  # the last update is applied before the weights are read
                metrics = evaluate(model, task, eval_examples, eval_items, train.eval_batch)
                log.write({"step": step, "eval": metrics})
                shown["eval_loss"] = metrics["loss"]
    bar.close()

    metrics = evaluate(model, task, eval_examples, eval_items, train.eval_batch)
    final: dict[str, Any] = {"step": completed, "eval": metrics}
    if running is not None and privacy.ledger is not None:  # also when the budget guard stopped the run
        final["epsilon"] = running.after(privacy.ledger)
    log.write(final)
    log.close()
    saved = model.save_trained(out / "adapter")  # e.g. a LoRA run's peft adapter
    result: dict[str, Any] = {
        "steps": completed,
        **({"stopped": stopped} if stopped else {}),
        "main_metric": task.main_metric,
        "metrics": metrics,
        "metrics_before": metrics_before,
        "privacy": privacy_record(recipe, parts, privacy, sampling, reported, secret),
        "run_dir": str(out),
        **({"adapter": str(out / "adapter")} if saved else {}),
        "seconds": round(time.time() - started, 2),
    }
    if privacy.ledger is None:  # step times depend on batch sizes: published only for non-private runs
        result["seconds_per_step"] = round(stepping / max(completed, 1), 5)
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    atomic_write_text(out / "result.json", json.dumps(result, indent=1))
    return result


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

"""The training loop: one zeroth-order step reads top to bottom like the algorithm.

:class:`Training` is a run that can be stepped: ``zofw run`` and ``zofw resume`` drive it to the end
(:func:`run`, :func:`resume`), the Python API hands it to notebooks. Before its first step it decides
everything that can fail on bad input (``zofw.planning``); each step then samples, probes, releases,
logs the release to the seed log and updates; records, evaluations and checkpoints follow the recipe.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import tomli_w
import torch
from tqdm import tqdm

from zofw import checkpoint, loggers
from zofw.assemble import Components
from zofw.batching import default_rows
from zofw.config import Recipe
from zofw.directions import DIRECTION_GENERATOR, stream_seed
from zofw.errors import BadInput
from zofw.evaluate import evaluate, per_example_losses
from zofw.planning import (INSECURE_SECRET_ENV, plan_privacy, privacy_record, resolved_recipe, secret_source,
                           training_examples)
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease, Released
from zofw.privacy.running import RunningEpsilon, log_marks
from zofw.rundir import MetricsLog, atomic_write_text, check_finite_parameters, claim, write_json
from zofw.seedlog import SeedLog
from zofw.slots.estimator import LossFn, PerExample
from zofw.slots.model import ModelAdapter
from zofw.updater import Updater

__all__ = ["INSECURE_SECRET_ENV", "Training", "run", "resume"]


def batch_losses(model: ModelAdapter, items: list[Any], rows: int) -> LossFn:
    """Per-example losses of a batch at the current parameters, each in a forward of a public shape."""
    return lambda: per_example_losses(model, items, rows)


class Training:
    """A run of ``recipe`` writing ``out``: build it, then :meth:`step` until :attr:`done`, then :meth:`finish`.

    With ``resume=True`` the run directory of an interrupted run is continued: the newest checkpoint is
    loaded, the seed log's later updates are replayed (no data touched, nothing released again), and
    the ledger and metrics are cut back to that point (see :meth:`_restore` for why that is exact).
    """

    def __init__(self, recipe: Recipe, parts: Components, out: Path, source: str = "", resume: bool = False) -> None:
        self.started = time.time()
        torch.manual_seed(recipe.seed)
        self.recipe, self.parts, self.out = recipe, parts, out
        train, task, model, estimator = recipe.train, parts.task, parts.model, parts.estimator

        # --- data, model and privacy: everything that can fail on bad input, before writing anything --
        train_examples, self.sampling = training_examples(recipe, parts)
        self.eval_examples = task.load("eval", recipe.seed)
        if not self.eval_examples:
            raise BadInput(f"task '{task.name}' produced no evaluation examples")
        if estimator.private and task.evaluates_on_private_data():
            raise BadInput("task.path: a private run would report un-noised metrics of a held-out part of its "
                           "private training file; give task.eval_path, or set task.held_out_public = true if that "
                           "part is public")
        model.load(task.kind)
        self.params = model.trainable()
        estimator.prepare(self.params)
        self.train_items, self.eval_items = model.encode(train_examples), model.encode(self.eval_examples)
        self.rows = train.microbatch or default_rows(train.expected_batch)  # public: rows of every training forward
        # one secure stream for the batches and the released noise; its key never leaves this process
        self.secret = secret_source()
        self.privacy = plan_privacy(recipe, parts, self.sampling, self.secret, out / "privacy_ledger.json",
                                    self.params.numel())
        self.sampler = self.sampling.sampler(self.secret)
        loggers.require(train.report_to)
        self.log_every = train.log_every or max(1, train.steps // 50)
        self.updater = Updater(self.params, estimator, parts.schedule, train.steps, train.weight_decay)
        self.completed, self.stopped, self.stepping = 0, None, 0.0
        self.resumed_from: Optional[int] = None
        # a seed-log fine-tune needs the released values only; noise added to the parameters has a secret key
        self.seedlog: Optional[SeedLog] = None
        replayable = estimator.noise_space == "release"

        self._replayed: list[tuple[int, torch.Tensor]] = []  # (step, values) of log steps a resume replayed
        if resume:
            self._restore(replayable)
        else:
            claim(out)
            atomic_write_text(out / "recipe.toml", f"# resolved from {source}\n"
                              + tomli_w.dumps(resolved_recipe(recipe, parts)))
            if replayable:
                self.seedlog = SeedLog.create(out / "seedlog.bin", self._seedlog_header())
            self._write_provenance()
        self.log = MetricsLog(out / "metrics.jsonl", loggers.make_loggers(train.report_to, out, resolved_recipe(
            recipe, parts)))
        # ε so far at every log record: the planned schedule's curve, computed once (zofw.privacy.running)
        self.running: Optional[RunningEpsilon] = None
        self.budget: Optional[float] = None
        if self.privacy.ledger is not None:
            assert recipe.privacy is not None and isinstance(self.privacy.release, PrivateRelease)
            self.running = RunningEpsilon(parts.accountants[recipe.privacy.accountant], self.privacy.release.event(),
                                          self.privacy.ledger.delta, log_marks(train.steps, self.log_every))
            self.budget = recipe.privacy.max_epsilon or recipe.privacy.epsilon
        self.metrics_before = self._first_evaluation() if resume else None
        for step, values in self._replayed:  # records the killed run was about to write
            self._write_record(step, {"projected_grad": values.tolist()})

    # --- one step -----------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.completed >= self.recipe.train.steps or self.stopped is not None

    def step(self) -> dict[str, Any]:
        """Take the next step; return its metrics record (written to metrics.jsonl at log steps only)."""
        step = self.completed + 1
        affordable = self.privacy.affordable_steps
        if affordable is not None and step > affordable:
            assert self.recipe.privacy is not None
            self.stopped = (f"privacy budget: step {step} would spend more than privacy.max_epsilon = "
                            f"{self.recipe.privacy.max_epsilon:g} ({self.recipe.privacy.accountant}); "
                            f"stopped after step {step - 1}")
            return {}
        estimator, params = self.parts.estimator, self.params
        tick = time.perf_counter()
        self.secret.enter_step(step)  # this step's batch and noise: a function of the key and the step
        # 1. sample a batch as the accountant assumes (Poisson by default)
        batch = [self.train_items[i] for i in self.sampler.sample()]
        # 2. probe the loss along the public direction u(seed); the schedule (public) sets η and λ
        seed = stream_seed(self.recipe.seed, step)
        plan = self.updater.plan(step)
        with torch.inference_mode():
            measured = estimator.per_example(params, batch_losses(self.parts.model, batch, self.rows), seed)
            # 3–4. account (ledger on disk first), drop non-finite values, clip, sum, add noise where the
            # estimator declares it, divide by the expected (public) batch size
            released = self.privacy.release.privatize(measured)
            lr = self.recipe.train.lr * plan.lr_factor
            if self.seedlog is not None:  # queued without a device wait; flushed before anything is written
                self.seedlog.append(step, seed, lr, released.coefficients)
            # 5. update θ ← θ − η·(ĝ·u + wd·θ), and the schedule's proximal pull
            self.updater.apply(step, seed, plan, lr, released.coefficients, released.parameter_noise)
            released.check_complete(params)
        self.completed = step
        self.stepping += time.perf_counter() - tick
        return self._record(step, measured, released, len(batch))

    def _record(self, step: int, measured: PerExample, released: Released, batch_size: int) -> dict[str, Any]:
        """6. What may be reported: the release (post-processing) and ε so far; never the training loss of
        a private run. Between log steps nothing is read back from the device (a read waits for the GPU)."""
        if not self._logs(step):
            return {"step": step}
        record: dict[str, Any] = {}
        if released.public is not None:
            record["projected_grad"] = released.public.tolist()
        if self.privacy.ledger is None and measured.loss is not None and batch_size:
            record["train_loss"] = float(measured.loss.float().mean())
            record["nonfinite"] = released.nonfinite
        return self._write_record(step, record)

    def _write_record(self, step: int, values: dict[str, Any]) -> dict[str, Any]:
        self._flush_seedlog()  # a record carries released values: their seed-log records go first
        record = {"step": step, **values}
        if self.running is not None and self.privacy.ledger is not None:
            record["epsilon"] = self.running.after(self.privacy.ledger)
        self.log.write(record)
        # a diverged run stops here, its record written, rather than waste its remaining steps (the
        # weights are a function of released values only: checking them reveals nothing private)
        self.params.settle()
        check_finite_parameters(self.params.tensors, step, self.recipe.train.lr)
        return record

    def _logs(self, step: int) -> bool:
        return step % self.log_every == 0 or step == self.recipe.train.steps

    # --- evaluation, checkpoints, the end ------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Metrics on the (public) evaluation data at the current weights."""
        self.params.settle()  # the last update is applied before the weights are read
        train = self.recipe.train
        return evaluate(self.parts.model, self.parts.task, self.eval_examples, self.eval_items, train.eval_batch)

    def _flush_seedlog(self) -> None:
        if self.seedlog is not None:
            self.seedlog.flush()

    def evaluate_and_log(self) -> dict[str, float]:
        self._flush_seedlog()
        metrics = self.evaluate()
        self.log.write({"step": self.completed, "eval": metrics})
        if self.metrics_before is None:
            self.metrics_before = metrics
        return metrics

    def checkpoint(self) -> None:
        """An atomic checkpoint of the weights after the last completed step (never of diverged ones)."""
        self._flush_seedlog()
        self.params.settle()
        check_finite_parameters(self.params.tensors, self.completed, self.recipe.train.lr)
        checkpoint.save(self.out, self.completed, self.params, self.parts.estimator.state_dict(), self.updater.anchor)

    def finish(self) -> dict[str, Any]:
        """Final evaluation, the trained weights and result.json; returns the result record."""
        self._flush_seedlog()
        metrics = self.evaluate()
        final: dict[str, Any] = {"step": self.completed, "eval": metrics}
        if self.running is not None and self.privacy.ledger is not None:  # also after a budget stop
            final["epsilon"] = self.running.after(self.privacy.ledger)
        self.log.write(final)
        self.log.close()
        if self.seedlog is not None:
            self.seedlog.close()
        # the fine-tune as its ecosystem loads it (a checkpoint, the trained subset, a peft adapter);
        # an adapter that saves nothing gets a final checkpoint of the trainable weights instead
        saved = self.parts.model.save_trained(self.out / "adapter")
        if not saved:
            self.checkpoint()
        recipe, privacy = self.recipe, self.privacy
        reported = list(recipe.privacy.report) if recipe.privacy else []
        result: dict[str, Any] = {
            "steps": self.completed,
            **({"stopped": self.stopped} if self.stopped else {}),
            **({"resumed_from_step": self.resumed_from} if self.resumed_from is not None else {}),
            "main_metric": self.parts.task.main_metric,
            "metrics": metrics,
            "metrics_before": self.metrics_before,
            "privacy": privacy_record(recipe, self.parts, privacy, self.sampling, reported, self.secret),
            "run_dir": str(self.out),
            **({"seed_log": str(self.out / "seedlog.bin")} if self.seedlog is not None else {}),
            **({"adapter": str(self.out / "adapter")} if saved else {}),
            "seconds": round(time.time() - self.started, 2),
        }
        if privacy.ledger is None:  # step times depend on batch sizes: published only for non-private runs
            result["seconds_per_step"] = round(self.stepping / max(self.completed, 1), 5)
        if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
            result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        write_json(self.out / "result.json", result)
        return result

    def run_to_end(self) -> dict[str, Any]:
        """Step to the end with a progress bar, the recipe's evaluations and checkpoints; SIGINT and SIGTERM
        stop at the end of the current step with a checkpoint."""
        train = self.recipe.train
        if self.metrics_before is None:
            self.evaluate_and_log()
        shown: dict[str, Any] = {"eval_loss": self.metrics_before["loss"]} if self.metrics_before else {}
        bar = tqdm(total=train.steps, initial=self.completed, desc=f"{self.parts.estimator.name} on "
                   f"{self.parts.task.name}", unit="step", dynamic_ncols=True, mininterval=0.5)
        requested: list[str] = []
        restore = _stop_on_signals(requested)
        try:
            # each update is fused into the next step's first pass over the weights (zofw.just_in_time)
            with self.params.deferred_updates():
                while not self.done and not requested:
                    record = self.step()
                    if self.stopped:
                        tqdm.write(self.stopped, file=sys.stderr)
                        break
                    bar.update(1)
                    step = self.completed
                    if "train_loss" in record:
                        shown["train_loss"] = record["train_loss"]
                    if "epsilon" in record:  # the spend, against the target or cap
                        shown["ε"] = f"{record['epsilon']:.3g}" + (f"/{self.budget:g}" if self.budget else "")
                    if self._logs(step):
                        bar.set_postfix({k: v if isinstance(v, str) else f"{v:.4g}" for k, v in shown.items()},
                                        refresh=False)
                    if train.eval_every and step % train.eval_every == 0 and step != train.steps:
                        shown["eval_loss"] = self.evaluate_and_log()["loss"]
                    if train.checkpoint_every and step % train.checkpoint_every == 0 and step != train.steps:
                        self.checkpoint()
        finally:
            restore()
            bar.close()
        if requested:
            self.checkpoint()
            self.log.close()
            if self.seedlog is not None:
                self.seedlog.close()
            tqdm.write(f"stopped by {requested[0]} after step {self.completed}, checkpoint written; "
                       f"`zofw resume {self.out}` continues", file=sys.stderr)
            raise KeyboardInterrupt(requested[0])
        return self.finish()

    # --- the seed log, provenance and resuming --------------------------------------------------------

    def _seedlog_header(self) -> dict[str, Any]:
        resolved = resolved_recipe(self.recipe, self.parts)
        return {"private": self.parts.estimator.private, "model": resolved["model"],
                "task_kind": self.parts.task.kind, "estimator": resolved["estimator"],
                "schedule": resolved["schedule"], "seed": self.recipe.seed,
                "train": {"steps": self.recipe.train.steps, "lr": self.recipe.train.lr,
                          "weight_decay": self.recipe.train.weight_decay},
                "trainable": self.params.names, "trainable_numel": self.params.numel(),
                "values_per_step": self.parts.estimator.directions(), "directions": DIRECTION_GENERATOR,
                "dtype": str(self.params.tensors[0].dtype).removeprefix("torch."),
                "device": self.params.tensors[0].device.type}

    def _write_provenance(self) -> None:
        try:
            from zofw import provenance
        except ImportError:
            return
        provenance.write(self.out, self.parts)

    def _first_evaluation(self) -> Optional[dict[str, float]]:
        for line in (self.out / "metrics.jsonl").read_text().splitlines()[:1]:
            record = json.loads(line)
            if record.get("step") == 0 and "eval" in record:
                return record["eval"]
        return None

    def _restore(self, replayable: bool) -> None:
        """Continue an interrupted run in ``self.out``.

        Resume point r: the newest checkpoint, then every seed-log record after it replayed (updates from
        released values: no data is read, nothing is released again). The ledger is written before each
        release and the seed log right after it, so the ledger may hold one step more than the seed log:
        a release that died with its process before reaching any file. Its step is taken again, and the
        ledger is cut back to r so that each step that left a trace is counted once. One exception: an
        estimator without a seed log (noise in the parameters) can only resume from its checkpoint, and
        metrics records written after that checkpoint carry information about the steps that follow it;
        those steps stay in the ledger and are accounted again when they are retaken (over-counting,
        never under-counting; ``train.checkpoint_every`` bounds it).
        """
        ledger_path = self.out / "privacy_ledger.json"
        if not (self.out / "recipe.toml").is_file():
            raise BadInput(f"{self.out}: not a zofw run directory (no recipe.toml)")
        if (self.out / "result.json").exists():
            raise BadInput(f"{self.out}: this run finished; nothing to resume")
        latest = checkpoint.latest(self.out)
        point = 0
        if latest is not None:
            state, self.updater.anchor = checkpoint.load(latest, self.params)
            self.parts.estimator.load_state_dict(state)
            point = latest.step
        logged = self._last_logged_step()
        if replayable and not (self.out / "seedlog.bin").exists() and latest is None:
            self.seedlog = SeedLog.create(self.out / "seedlog.bin", self._seedlog_header())  # killed before it
        elif replayable:
            self.seedlog = SeedLog.read_header(self.out / "seedlog.bin")
            if self.seedlog.header.get("trainable") != self.params.names:
                raise BadInput(f"{self.out}/seedlog.bin: recorded for other trainable parameters than this model's")
            with torch.inference_mode():
                for record in self.seedlog.records(after=point):
                    plan = self.updater.plan(record.step)
                    self.updater.apply(record.step, record.seed, plan, record.lr, record.values)
                    point = record.step
                    if self._logs(record.step) and record.step > logged:
                        self._replayed.append((record.step, record.values))
            self.seedlog.truncate(point)
        metrics_after = self._cut_metrics(point)
        if self.privacy.ledger is not None:
            ledger = PrivacyLedger.load(ledger_path) if ledger_path.exists() else \
                PrivacyLedger(self.privacy.ledger.delta)
            if ledger.steps < point:
                raise BadInput(f"{ledger_path}: accounts {ledger.steps} steps but the run has {point}; refusing to "
                               "continue with a ledger that under-counts")
            ledger.truncate(point if replayable or self.secret.reproducible else max(point, metrics_after))
            self.privacy.ledger.events[:] = ledger.events
            self.privacy.ledger.save(ledger_path)
        self.completed = self.resumed_from = point

    def _metrics_records(self) -> list[tuple[str, dict[str, Any]]]:
        path = self.out / "metrics.jsonl"
        found = []
        for line in (path.read_text().split("\n") if path.exists() else []):
            try:
                found.append((line, json.loads(line)))
            except ValueError:  # a line cut by the kill, or the empty tail
                continue
        return found

    def _last_logged_step(self) -> int:
        return max((int(record.get("step", 0)) for _, record in self._metrics_records() if "eval" not in record),
                   default=0)

    def _cut_metrics(self, point: int) -> int:
        """Keep metrics.jsonl's records up to step ``point`` (and no partial last line); the later ones, and
        a closing evaluation that :meth:`finish` will write again, move to metrics.superseded.jsonl.
        Returns the last step that had a record."""
        path = self.out / "metrics.jsonl"
        kept, later, last = [], [], 0
        for line, record in self._metrics_records():
            step = int(record.get("step", 0))
            last = max(last, step)
            closing = "eval" in record and step == point == self.recipe.train.steps
            (later if step > point or closing else kept).append(line)
        if later:
            with open(self.out / "metrics.superseded.jsonl", "a") as handle:
                handle.write("\n".join(later) + "\n")
        atomic_write_text(path, "".join(line + "\n" for line in kept))
        return last


def _stop_on_signals(requested: list[str]) -> Any:
    """SIGINT/SIGTERM handlers that ask the loop to stop after the current step; returns the undo."""
    try:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda number, frame: requested.append(signal.Signals(number).name))
    except ValueError:  # not the main thread: signals stay as they are
        return lambda: None
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def run(recipe: Recipe, parts: Components, out: Path, source: str) -> dict[str, Any]:
    """Train as ``recipe`` says, writing the run directory ``out``; return the result record."""
    return Training(recipe, parts, out, source).run_to_end()


def resume(recipe: Recipe, parts: Components, out: Path) -> dict[str, Any]:
    """Continue the interrupted run in ``out`` (its own resolved recipe) to the end."""
    return Training(recipe, parts, out, resume=True).run_to_end()

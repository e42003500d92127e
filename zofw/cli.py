"""The ``zofw`` command: a thin dispatcher over recipes, registries and the training loop."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

import typer

from zofw import __version__
from zofw.errors import BadInput, RunFailed

app = typer.Typer(
    help="Private, memory-lean fine-tuning of language models with zeroth-order optimization.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_state = {"debug": bool(os.environ.get("ZOFW_DEBUG"))}

# Rich reads "[default: …]" as markup and drops it: defaults are said in words
RecipeArg = typer.Argument(None, help="Recipe: a TOML file or a built-in recipe's name (zofw recipes lists them). "
                           "Default: the built-in quickstart, so a bare `zofw run` runs it.", show_default=False)
SetOption = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help="Override a recipe key, e.g. train.steps=20.")
JsonOption = typer.Option(False, "--json", help="Print one JSON object as the last line of stdout.")


def guarded(command: Callable) -> Callable:
    """Exit 2 with one line for bad input, 1 with one line for a failed run (a traceback with --debug)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BadInput as error:
            code, message, failure = 2, str(error), error
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # `zofw list | head -1`: the reader left; nothing more to say to it
            quiet_stdout()
            raise typer.Exit(0) from None
        except KeyboardInterrupt as error:
            code, message, failure = 130, "interrupted", error
        except RunFailed as error:  # its message already says what failed
            code, message, failure = 1, f"run failed: {error}", error
        except Exception as error:  # noqa: BLE001 - the one place a run's failure is reported
            code, message, failure = 1, f"run failed: {type(error).__name__}: {error}", error
        if _state["debug"]:  # the traceback, with the cause a one-line message hides (``from None``)
            failure.__suppress_context__ = False
            traceback.print_exception(type(failure), failure, failure.__traceback__)
        lines = message.strip().splitlines()
        typer.echo(f"error: {lines[0] if lines else 'unknown'}", err=True)
        raise typer.Exit(code)

    return wrapper


def quickstart_path() -> Path:
    return Path(str(resources.files("zofw") / "recipes" / "quickstart.toml"))


def quiet_stdout() -> None:
    """Point stdout at /dev/null after a broken pipe, so the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def fresh_run_dir(stem: str) -> Path:
    """runs/STEM-TIME, created now (atomically), with a counter if a run of the same second has it."""
    from zofw.rundir import fresh

    return fresh(Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def _load(recipe: Optional[Path], overrides: list[str], inputs: str = "local"):
    """Recipe, overrides and components, checked; ``inputs``: "local" also checks the model and tokenizer
    directories it names, "data" also whether hub datasets can be fetched (offline: refused at once),
    "model" the same for the model and tokenizer (bench: no task data), "all" for every hub id."""
    from zofw.catalog import resolve_recipe
    from zofw.config import load_recipe

    path = resolve_recipe(recipe)  # a file, a built-in recipe's name, or (None) the quickstart
    loaded = load_recipe(path, overrides)  # before importing torch and the plugins: a bad recipe is refused at once
    from zofw.assemble import build
    from zofw.provenance import check_inputs

    parts = build(loaded, str(path))
    kinds = {"data": ("dataset",), "model": ("model", "tokenizer")}.get(inputs, ("model", "tokenizer", "dataset"))
    check_inputs(parts, network=inputs != "local", kinds=kinds)
    return path, loaded, parts


def check_new_file(option: str, path: Optional[Path]) -> None:
    """Refuse an output file option (--plot, --profile) before any work: it exists (it is never
    overwritten), its folder is missing or a file, or the folder is not writable."""
    if path is None:
        return
    from zofw.errors import blocking_file

    if path.exists() or path.is_symlink():
        raise BadInput(f"{option}: {path} exists; it is not overwritten")
    blocker = blocking_file(path)
    if blocker is not None:
        raise BadInput(f"{option}: {path}: {blocker} is a file, not a directory")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise BadInput(f"{option}: {path}: no such directory: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{option}: {path}: {folder} is not writable")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"zofw {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(False, "--version", help="Show the version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    _state["debug"] = bool(os.environ.get("ZOFW_DEBUG")) or debug  # per invocation, not sticky


RUN_EXAMPLES = """Examples:

  zofw run   (the built-in quickstart: real data, ε = 2, CPU, offline)

  zofw run recipes/quickstart.toml -s train.steps=50 -s privacy.epsilon=4

  zofw run dpzero_roberta-large_sst2 --out runs/sst2   (a built-in recipe by name)

  zofw cp quickstart mine.toml && zofw run mine.toml"""


@app.command(epilog=RUN_EXAMPLES)
@guarded
def run(
    recipe: Optional[Path] = RecipeArg,
    overrides: list[str] = SetOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/NAME-TIME)."),
    as_json: bool = JsonOption,
) -> None:
    """Train as a recipe says; write the run directory; print metrics and ε per accountant."""
    from zofw.rundir import check_run_dir, prepare, release

    if out is not None:
        check_run_dir(out)  # at once, before torch and the plugins are even imported
    path, loaded, parts = _load(recipe, overrides, inputs="all")
    from zofw.train import INSECURE_SECRET_ENV
    from zofw.train import run as train

    # the run directory is checked and created before the model loads; removed again if still empty
    if out is None:
        out = fresh_run_dir(path.stem)
        created = [out]
    else:
        created = prepare(out)
    if os.environ.get(INSECURE_SECRET_ENV) is not None and parts.estimator.private:
        typer.echo(f"warning: {INSECURE_SECRET_ENV} is set: batches and noise are reproducible, this run is NOT private",
                   err=True)
    try:
        # the recipe's path as the user gave it; never the install location of the built-in quickstart
        result = train(loaded, parts, out, str(recipe) if recipe else "the built-in quickstart recipe")
    except BaseException:
        release(created)
        raise
    _report(result, as_json)


def _report(result: dict, as_json: bool) -> None:
    """A run's result: the metrics, ε per accountant, the run directory (or the record as JSON)."""
    from zofw.rundir import finite_or_null

    if as_json:
        typer.echo(json.dumps(finite_or_null(result)))
        return
    main = result["main_metric"]
    typer.echo(f"{main}: {result['metrics_before'][main]:.2f} -> {result['metrics'][main]:.2f} "
               f"after {result['steps']} steps")
    privacy = result["privacy"]
    if privacy.get("not_private_because"):
        typer.echo(f"NOT PRIVATE: {privacy['not_private_because']}")
    if privacy["delta"] is not None:
        spent = ", ".join(f"{name} {eps:.3f}" if eps is not None else f"{name} inf"
                          for name, eps in privacy["epsilon"].items())
        typer.echo(f"privacy at δ={privacy['delta']:g}: ε {spent}")
        typer.echo(f"  {calibration_line(privacy)}")
    else:
        typer.echo("privacy: none (non-private estimator)")
    typer.echo(f"run directory: {result['run_dir']}")


def calibration_line(privacy: dict) -> str:
    """σ and what set it, with C, q and T: what a DP paper must report next to ε."""
    if privacy.get("calibrated_with"):
        how = f"calibrated with {privacy['calibrated_with']} for ε = {privacy['target_epsilon']:g}"
    else:
        how = "as the recipe set it"
    parts = [f"σ = {privacy['noise_multiplier']:.4g} ({how})"]
    if privacy.get("clip_bound") is not None:
        parts.append(f"C = {privacy['clip_bound']:g}")
    if privacy.get("sample_rate") is not None:
        parts.append(f"q = {privacy['sample_rate']:.4g}" + (f" ({privacy['sampling']})" if privacy.get("sampling") else ""))
    if privacy.get("steps") is not None:
        parts.append(f"T = {privacy['steps']}")
    return ", ".join(parts)


@app.command()
@guarded
def resume(
    run_dir: Path = typer.Argument(..., help="The run directory of an interrupted run."),
    as_json: bool = JsonOption,
) -> None:
    """Continue an interrupted run (kill, crash, Ctrl-C) from its checkpoint and seed log, to the end."""
    from zofw.train import resume as continue_run

    if not (run_dir / "recipe.toml").is_file():
        raise BadInput(f"{run_dir}: not a zofw run directory (no recipe.toml)")
    _, loaded, parts = _load(run_dir / "recipe.toml", [], inputs="all")
    _report(continue_run(loaded, parts, run_dir), as_json)


@app.command()
@guarded
def replay(
    base: str = typer.Argument(..., help="The base model: a local directory or hub id, as the run loaded it."),
    seedlog: Path = typer.Argument(..., help="The run's seedlog.bin."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the rebuilt fine-tune (new directory)."),
    as_json: bool = JsonOption,
) -> None:
    """Rebuild a fine-tune from its base model and seed log (kilobytes), without the data."""
    from zofw.replay import replay as rebuild
    from zofw.rundir import prepare

    if not seedlog.is_file():
        raise BadInput(f"{seedlog}: no such seed log")
    prepare(out)
    summary = rebuild(base, seedlog, out)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(f"replayed {summary['steps']} steps ({summary['bytes_per_step']} bytes each) onto {base}: {out}")


@app.command()
@guarded
def validate(recipe: Optional[Path] = RecipeArg, overrides: list[str] = SetOption, as_json: bool = JsonOption) -> None:
    """Check a recipe, its overrides, component options and files, without loading models or data."""
    path, loaded, parts = _load(recipe, overrides)
    if as_json:  # the recipe as a run would record it: every component's defaults filled in
        from zofw.planning import resolved_recipe

        typer.echo(json.dumps({"recipe": str(path), "ok": True, "resolved": resolved_recipe(loaded, parts)}))
        return
    names = ", ".join(f"{slot}={getattr(parts, slot).name}" for slot in ("model", "task", "estimator")
                      if getattr(parts, slot) is not None)
    typer.echo(f"{path}: ok ({names})")


@app.command()
@guarded
def audit(
    recipe: Optional[Path] = RecipeArg,
    overrides: list[str] = SetOption,
    trials: int = typer.Option(200_000, "--trials", help="Releases per neighbouring dataset (at least 1000)."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence of the lower bound, in (0.5, 1)."),
    as_json: bool = JsonOption,
) -> None:
    """Empirical lower bound on ε of one step's private release; exit 1 if it exceeds the claimed ε."""
    from zofw.privacy.audit import audit_recipe, check_settings

    check_settings(trials, confidence)
    _, loaded, parts = _load(recipe, overrides, inputs="data")
    result = audit_recipe(loaded, parts, trials, confidence)
    if as_json:
        typer.echo(json.dumps(result.record()))
    else:
        for label, value in [
            (f"claimed ε ({result.accountant}, δ={result.delta:g})", f"{result.epsilon_claimed:.3f}"),
            ("empirical ε lower bound", f"{result.epsilon_lower_bound:.3f} at confidence {result.confidence:g}"),
            ("point estimate", f"{result.epsilon_estimate:.3f}"),
            ("trials per side", f"{result.trials} (half choose the test, half bound it)"),
            ("σ (noise multiplier)", f"{result.noise_multiplier:.4g}"),
            ("C (clip bound)", f"{result.clip_bound:g}; canary moves the sum {result.canary_shift:.4g} "
                               f"(sensitivity {result.sensitivity:.4g})"),
            ("test", result.test),
            ("audited", result.audited),
            ("seconds", f"{result.seconds:.1f}"),
        ]:
            typer.echo(f"{label:<28} {value}")
    if not result.passed:
        typer.echo(f"audit failed: empirical ε lower bound {result.epsilon_lower_bound:.3f} exceeds the claimed "
                   f"{result.epsilon_claimed:.3f}", err=True)
        raise typer.Exit(1)


@app.command()
@guarded
def bench(
    recipe: Optional[Path] = RecipeArg,
    overrides: list[str] = SetOption,
    batch: int = typer.Option(16, "--batch", help="Examples per step (all in one forward)."),
    length: int = typer.Option(256, "--length", help="Tokens per example."),
    repeats: int = typer.Option(10, "--repeats", help="Timed runs per measurement (the median is reported)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed runs before each measurement."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Also write where a step's time goes "
                                           "(torch.profiler's table of three steps) to this file."),
    as_json: bool = JsonOption,
) -> None:
    """Time the recipe's step against two forwards and the MeZO reference step, in one process."""
    from zofw.bench import bench as measure

    # every example exactly --length tokens: the adapter cuts the synthetic prompts there
    if repeats < 1 or warmup < 0:
        raise BadInput("bench: --repeats must be ≥ 1 and --warmup ≥ 0")
    if batch < 1 or length < 2:
        raise BadInput("bench: --batch must be ≥ 1 and --length ≥ 2")
    check_new_file("--profile", profile)
    _, loaded, parts = _load(recipe, [*overrides, f"model.max_length={length}"], inputs="model")
    _echo_table(measure(loaded, parts, batch, length, repeats, warmup, profile), as_json, 28)


def _echo_table(table: dict, as_json: bool, width: int) -> None:
    """One JSON line, or one aligned "key value" line per entry."""
    if as_json:
        typer.echo(json.dumps(table))
        return
    for key, value in table.items():
        typer.echo(f"{key:<{width}} {value}")


@app.command("list")
@guarded
def list_components(
    slot: Optional[str] = typer.Argument(None, help="One slot, plural or singular as in the recipe: estimator(s), "
                                        "clipper(s), schedule(s), noise, accountant(s), model(s), task(s)."),
    name: Optional[str] = typer.Argument(None, help="One component of the slot: show its options."),
    as_json: bool = JsonOption,
) -> None:
    """List registered components by slot; with a name, that component's options."""
    from zofw.catalog import slot_name
    from zofw.plugins import registries

    slots = registries()
    if slot is not None:
        slot = slot_name(slot, slots)
    if name is not None:
        _describe(name, slot, as_json)
        return
    chosen = {name: registry for name, registry in slots.items() if slot in (None, name)}
    table = {name: [{"name": e.name, "plugin": e.plugin, "summary": e.summary()} for e in registry]
             for name, registry in chosen.items()}
    if as_json:
        typer.echo(json.dumps(table))
        return
    for name, rows in table.items():
        typer.echo(f"{name}:")
        for row in rows:
            typer.echo(f"  {row['name']:<14} [{row['plugin']}] {row['summary']}")


def _describe(name: str, slot: Optional[str], as_json: bool) -> None:
    from zofw.catalog import describe_options, find_component
    from zofw.plugins import registries

    found_slot, entry = find_component(name, registries(), slot)
    rows = describe_options(entry.component)
    if as_json:
        typer.echo(json.dumps({"slot": found_slot, "name": entry.name, "plugin": entry.plugin,
                               "summary": entry.summary(), "options": rows}))
        return
    typer.echo(f"{found_slot} {entry.name} [{entry.plugin}]: {entry.summary()}")
    if not rows:
        typer.echo("  (no options)")
    for row in rows:
        typer.echo(f"  {row['name']}: {row['type']} = {row['default']}")
        if row["doc"]:
            typer.echo(f"      {row['doc']}")


@app.command(epilog="Examples:  zofw describe dpzero    zofw describe noise.gaussian    zofw describe text_classification")
@guarded
def describe(
    name: str = typer.Argument(..., help="A component's name, or SLOT.NAME where two slots share it."),
    as_json: bool = JsonOption,
) -> None:
    """A component's options: types, defaults and what each means (as a recipe's table takes them)."""
    _describe(name, None, as_json)


@app.command("recipes")
@guarded
def list_recipes(as_json: bool = JsonOption) -> None:
    """The recipes shipped with zofw: run one by name (zofw run NAME), or copy it to edit (zofw cp NAME DEST)."""
    from zofw.catalog import builtin_recipes, recipe_summary

    _echo_table({name: recipe_summary(path) for name, path in builtin_recipes().items()}, as_json, 32)


@app.command("cp")
@guarded
def copy_recipe(
    name: str = typer.Argument(..., help="A built-in recipe (zofw recipes lists them)."),
    dest: Path = typer.Argument(..., help="File or existing folder to copy it to (never overwritten)."),
) -> None:
    """Copy a built-in recipe, to edit and run as your own."""
    from zofw.catalog import copy_recipe as copy

    typer.echo(f"copied {name} to {copy(name, dest)}")


@app.command("plot")
@guarded
def plot_command(
    run_dir: Path = typer.Argument(..., help="A run directory (finished, or still running: what it recorded so far)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the PNGs and summary.md "
                                       "(default: RUN_DIR/plots)."),
) -> None:
    """PNG plots of a run: held-out metric and loss, and ε against steps per accountant; plus summary.md."""
    from zofw.plot import plot_run

    for path in plot_run(run_dir, out):
        typer.echo(str(path))


app.command("report", help="The same as `zofw plot`: a run's plots and summary.md.")(plot_command)


@app.command("export")
@guarded
def export_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    to: list[str] = typer.Option(..., "--to", help="tensorboard (RUN_DIR/tensorboard) or wandb; repeatable."),
    follow: bool = typer.Option(False, "--follow", help="Keep sending new records until the run finishes."),
) -> None:
    """Send a run's metrics.jsonl (metrics, noised releases, ε: nothing private) to TensorBoard or W&B."""
    from zofw.loggers import export

    typer.echo(f"sent {export(run_dir, to, follow)} records to {', '.join(to)}")


@app.command()
@guarded
def plugins(as_json: bool = JsonOption) -> None:
    """List installed plugins (entry-point group "zofw") and the hooks they implement."""
    from zofw.plugins import plugin_info

    rows = plugin_info()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        status = f"BROKEN: {row['error']}" if row["error"] else row["hooks"]
        typer.echo(f"{row['name']:<10} {row['module']:<24} {row['distribution']:<16} {status}")


@app.command("privacy")
@guarded
def privacy_view(
    target: str = typer.Argument(..., metavar="compare|calibrate|RECIPE|RUN_DIR",
                                 help="compare: ε per accountant for given q, σ, T; calibrate: σ per accountant for "
                                      "a target ε; a recipe: its planned schedule; a run directory: its ledger."),
    sampling_rate: Optional[float] = typer.Option(None, "--sampling-rate", help="q, Poisson sampling rate."),
    noise_multiplier: Optional[float] = typer.Option(None, "--noise-multiplier", help="σ (compare)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="T, releases."),
    delta: float = typer.Option(1e-5, "--delta", help="δ."),
    target_epsilon: Optional[float] = typer.Option(None, "--target-epsilon", help="ε to calibrate σ for (calibrate)."),
    accountants: Optional[str] = typer.Option(None, "--accountants", help="Comma-separated names (default: every "
                                              "registered accountant that composes the mechanism)."),
    mechanism: str = typer.Option("gaussian", "--mechanism", help="The noise mechanism (compare, calibrate)."),
    overrides: list[str] = SetOption,
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="PNG of ε against steps per accountant."),
    as_json: bool = JsonOption,
) -> None:
    """Privacy accountants side by side, without training."""
    from zofw.privacy import compare as side_by_side
    from zofw.privacy.ledger import PrivacyEvent

    names = [name.strip() for name in accountants.split(",") if name.strip()] if accountants else None
    check_new_file("--plot", plot_path)
    if target == "calibrate":
        if sampling_rate is None or steps is None or target_epsilon is None:
            raise BadInput("privacy calibrate needs --target-epsilon, --sampling-rate and --steps")
        side_by_side.check_parameters(sampling_rate, None, steps, delta, target_epsilon)
        chosen = side_by_side.accountants_for_events(names, [PrivacyEvent(mechanism, 1.0, sampling_rate, steps)])
        sigmas = side_by_side.calibrate(target_epsilon, sampling_rate, steps, delta, chosen, mechanism,
                                        progress=None if as_json else lambda n: typer.echo(f"calibrating {n} …", err=True))
        if as_json:
            typer.echo(json.dumps({"noise_multiplier": sigmas}))
        else:
            for name, sigma in sigmas.items():
                typer.echo(f"{name:<8} σ = {sigma:.4f}")
        return
    if target == "compare":
        if sampling_rate is None or noise_multiplier is None or steps is None:
            raise BadInput("privacy compare needs --sampling-rate, --noise-multiplier and --steps")
        side_by_side.check_parameters(sampling_rate, noise_multiplier, steps, delta)
        events = [PrivacyEvent(mechanism, noise_multiplier, sampling_rate, steps)]
        chosen = side_by_side.accountants_for_events(names, events)
        title = f"q = {sampling_rate:g}, σ = {noise_multiplier:g}, δ = {delta:g}"
    else:
        path = Path(target)
        if path.is_dir() or path.name == "privacy_ledger.json":
            ledger = side_by_side.ledger_of(path)
            events, delta = ledger.events, ledger.delta
            title = f"ledger of {path}"
        elif path.is_file():  # a recipe: the schedule it plans (σ calibrated as the run would)
            from zofw.planning import plan_privacy_schedule

            _, loaded, parts = _load(path, overrides, inputs="data")
            events, delta = plan_privacy_schedule(loaded, parts)
            title = f"planned by {path}"
        else:
            raise BadInput(f"{target}: not compare, calibrate, a recipe or a run directory")
        if not events:
            raise BadInput(f"{target}: nothing private to account (no privacy events)")
        chosen = side_by_side.accountants_for_events(names, events)
    result = side_by_side.compare(events, delta, chosen)
    if plot_path is not None:
        if len(events) != 1:
            raise BadInput("--plot draws one mechanism's schedule; this ledger holds several")
        side_by_side.plot_curve(side_by_side.curve(events[0], delta, chosen), plot_path, title)
    if as_json:
        typer.echo(json.dumps(result.record()))
        return
    for name in result.epsilon:
        mark = "≈" if name in result.approximations else "="  # ≈: an approximation, not an upper bound
        typer.echo(f"{name:<8} ε {mark} {result.epsilon[name]:.4f}   ({result.seconds[name]:.2f} s)")
    typer.echo(f"spread   {100 * result.spread():.1f}% (largest ε over smallest), δ = {delta:g}")


@app.command("eval")
@guarded
def eval_run(
    run_dir: Path = typer.Argument(..., help="The run directory of a finished run."),
    task: Optional[str] = typer.Option(None, "--task", help="Evaluate on this task instead of the run's (its "
                                       "options with --set task.KEY=VALUE)."),
    overrides: list[str] = SetOption,
    as_json: bool = JsonOption,
) -> None:
    """Evaluate a run's saved fine-tune (full checkpoint, trained subset or peft adapter) on a task's eval split."""
    from zofw.evaluate_run import evaluate_run, report_lines
    from zofw.rundir import finite_or_null

    record = evaluate_run(run_dir, task, overrides, load=_load)
    if as_json:
        typer.echo(json.dumps(finite_or_null(record)))
        return
    for line in report_lines(record):
        typer.echo(line)


experiment_app = typer.Typer(help="Reproduce published experiments with zofw's components.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("synthetic")
@guarded
def experiment_synthetic(
    quick: bool = typer.Option(False, "--quick", help="The reduced grid (d ≤ 2000 in 4 sizes, 4 values of T, "
                               "η and C, 2000 examples): minutes on 2 cores."),
    seeds: int = typer.Option(3, "--seeds", help="Data and noise seeds to average over."),
    modes: list[str] = typer.Option([], "--mode", help="Effective rank(s) to run: d, sqrt, log (default: all)."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of best gradient norm against d."),
    as_json: bool = JsonOption,
) -> None:
    """DPZero paper, Section 5.1: DPZero, DPGD-0th and DP-GD on quadratics of effective rank d, √d, ln d."""
    from tqdm import tqdm

    from zofw.experiments import synthetic

    chosen = tuple(modes) or synthetic.MODES
    unknown = [mode for mode in chosen if mode not in synthetic.MODES]
    if unknown or seeds < 1:
        raise BadInput(f"--mode must be among {', '.join(synthetic.MODES)} and --seeds ≥ 1 (got {unknown or seeds})")
    check_new_file("--plot", plot_path)
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise BadInput("--plot needs matplotlib (pip install -e \".[plot]\")") from None
    grid = synthetic.QUICK if quick else synthetic.FULL
    total = len(chosen) * len(grid.dims) * seeds * len(synthetic.METHODS) * grid.runs
    with tqdm(total=total, desc="synthetic", unit="run", disable=as_json) as bar:
        result = synthetic.run(grid, seeds, modes=chosen, progress=bar.update)
    if plot_path is not None:
        synthetic.plot(result, str(plot_path))
    if as_json:
        typer.echo(json.dumps(result.means(0)))
        return
    typer.echo(synthetic.table(result))


def main() -> None:
    try:
        app(prog_name="zofw")
    except BrokenPipeError:  # output cut short by a pipe outside a guarded command (help, errors)
        quiet_stdout()
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

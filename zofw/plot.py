"""``zofw plot RUN_DIR``: a finished (or killed) run as pictures a person can read, from its files alone.

- ``metrics.png``: the held-out main metric and loss against steps (the evaluations the run recorded);
- ``epsilon.png``: ε spent against steps: the calibrating accountant's ε that the run logged, and the curve of
  every accountant that composes the ledger's mechanism, computed from ``privacy_ledger.json``;
- ``summary.md``: the numbers behind them, with σ, C, q, T and δ.

Only ``metrics.jsonl``, ``privacy_ledger.json`` and ``result.json`` are read: what the run already published.
Nothing private (training losses, examples) is in them, so nothing private is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from zofw.errors import BadInput


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of RUN_DIR/metrics.jsonl; one-line BadInput for a missing or malformed file."""
    path = run_dir / "metrics.jsonl"
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise BadInput(f"{run_dir}: no metrics.jsonl (not a zofw run directory)")
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if number == len(lines):  # the last line of a killed run may be cut short
                break
            raise BadInput(f"{path}: line {number}: not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise BadInput(f"{path}: line {number}: not a metrics record (an object with an integer step)")
        records.append(record)
    return records


def evaluations(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each evaluated metric as (step, value) pairs, in step order."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        for name, value in (record.get("eval") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(name, []).append((record["step"], float(value)))
    return series


def logged_epsilon(records: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """The ε the run logged as it went (the calibrating accountant's), one value per step."""
    seen: dict[int, float] = {}
    for record in records:
        value = record.get("epsilon")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seen[record["step"]] = float(value)
    return sorted(seen.items())


def accountant_curves(run_dir: Path, points: int = 12) -> tuple[dict[str, list[tuple[int, float]]], Optional[float]]:
    """ε after t steps under every accountant that composes the ledger's mechanism, and δ; empty for a
    non-private run or a ledger of several mechanisms (whose curve is not one schedule)."""
    if not (run_dir / "privacy_ledger.json").is_file():
        return {}, None
    from zofw.privacy import compare

    ledger = compare.ledger_of(run_dir)
    if len(ledger.events) != 1:
        return {}, ledger.delta
    chosen = compare.accountants_for_events(None, ledger.events)
    return compare.curve(ledger.events[0], ledger.delta, chosen, points), ledger.delta


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BadInput("zofw plot needs matplotlib (pip install \"zofw[plot]\")") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(run_dir: Path, out: Optional[Path] = None) -> list[Path]:
    """Write metrics.png, epsilon.png (private runs) and summary.md into ``out`` (default RUN_DIR/plots)."""
    records = read_records(run_dir)
    result = _result(run_dir)
    series = evaluations(records)
    if not series and not logged_epsilon(records):
        raise BadInput(f"{run_dir}/metrics.jsonl: no evaluations and no ε recorded yet; nothing to plot")
    plt = _pyplot()
    out = out or run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    main = result.get("main_metric") or next((n for n in series if n != "loss"), None)
    if series:
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        for axis, name in zip(axes, [main, "loss"]):
            points = series.get(name or "", [])
            axis.plot([s for s, _ in points], [v for _, v in points], marker="o")
            for step, value in points[:1] + points[-1:]:
                axis.annotate(f"{value:.3g}", (step, value), textcoords="offset points", xytext=(0, 7), ha="center")
            axis.set(xlabel="step", ylabel=name or "", title=f"held-out {name}")
            axis.grid(True, alpha=0.3)
            axis.margins(x=0.08, y=0.2)
        figure.suptitle(f"{run_dir.name}: evaluation", fontsize=11)
        figure.tight_layout()
        written.append(out / "metrics.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    curves, delta = accountant_curves(run_dir)
    logged = logged_epsilon(records)
    if curves or logged:
        figure, axis = plt.subplots(figsize=(6.5, 4.2))
        for name, points in curves.items():
            axis.plot([t for t, _ in points], [e for _, e in points], marker="o", markersize=3, label=name)
        if logged:
            calibrated = (result.get("privacy") or {}).get("calibrated_with") or "run"
            axis.plot([s for s, _ in logged], [e for _, e in logged], color="black", linestyle="--", linewidth=1,
                      label=f"logged by the run ({calibrated})")
        target = (result.get("privacy") or {}).get("target_epsilon")
        if target is not None:
            axis.axhline(target, color="grey", linewidth=0.8, linestyle=":", label=f"target ε = {target:g}")
        axis.set(xlabel="step", ylabel="ε spent", title=f"ε against steps (δ = {delta:g})" if delta else "ε against steps")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        written.append(out / "epsilon.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    written.append(out / "summary.md")
    written[-1].write_text(summary(run_dir, result, series, curves, main), encoding="utf-8")
    return written


def _result(run_dir: Path) -> dict[str, Any]:
    """result.json where the run finished; {} for a run still going or killed."""
    path = run_dir / "result.json"
    if not path.is_file():
        return {}
    from zofw.rundir import read_json

    value = read_json(path, "result")
    return value if isinstance(value, dict) else {}


def summary(run_dir: Path, result: dict[str, Any], series: dict[str, list[tuple[int, float]]],
            curves: dict[str, list[tuple[int, float]]], main: Optional[str]) -> str:
    lines = [f"# {run_dir.name}", ""]
    if main and series.get(main):
        first, last = series[main][0], series[main][-1]
        lines.append(f"- held-out {main}: {first[1]:.2f} at step {first[0]} → {last[1]:.2f} at step {last[0]}")
    privacy = result.get("privacy") or {}
    if privacy.get("delta") is not None:
        spent = ", ".join(f"{name} {eps:.3f}" for name, eps in privacy["epsilon"].items() if eps is not None)
        lines.append(f"- ε at δ = {privacy['delta']:g}: {spent}")
        how = (f"calibrated with {privacy['calibrated_with']} for ε = {privacy['target_epsilon']:g}"
               if privacy.get("calibrated_with") else "set by the recipe")
        lines.append(f"- σ = {privacy['noise_multiplier']:.4g} ({how}); C = {privacy.get('clip_bound')}; "
                     f"q = {privacy.get('sample_rate', float('nan')):.4g} ({privacy.get('sampling')}); "
                     f"T = {privacy.get('steps')}; n = {privacy.get('dataset_size')}")
    elif result:
        lines.append("- not private (no privacy ledger)")
    else:
        lines.append("- the run has not finished (no result.json): the plots show what it recorded so far")
    if curves:
        lines.append("- ε after the last step per accountant (from the ledger): "
                     + ", ".join(f"{name} {points[-1][1]:.3f}" for name, points in curves.items()))
    return "\n".join(lines) + "\n"

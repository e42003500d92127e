"""Utility on a real pretrained model: DPZero at ε = 2 and ε = 6 against the untrained model and the
non-private two-point estimator, on real SST-2 with the bundled all-MiniLM-L6-v2 (docs/results.md).

    python scripts/utility_sst2.py DATA_DIR OUT_DIR [--device cuda] [--steps 1000] [--seeds 42 13 21]

1. Tuning (seed 42, ε = 6 and two-point): the step size from a small grid, scored on a part of the SST-2
   *training* file held out from the 1024 training examples (never on the dev set that is reported).
   As in the papers, the tuning runs themselves are not accounted.
2. Reported: each method at its tuned step size, for each seed, evaluated on the 872-example GLUE dev set;
   the untrained model's dev accuracy is each run's accuracy before its first step.
Every run is a `zofw run` of the recipe written below, so the numbers are what a user gets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECIPE = """
seed = {seed}

[model]
name = "sentence_encoder"          # the bundled pretrained all-MiniLM-L6-v2
trainable = "bias|LayerNorm"       # BitFit-style subset (31k weights): the quickstart's
device = "{device}"

[task]
name = "sst2"
path = "{data}/sst2/train.tsv"
{eval_line}
k_per_class = 512                  # LM-BFF / DPZero: 512 per class
n_eval = 872

[estimator]
name = "{estimator}"
smoothing = 1e-3

{privacy}

[train]
steps = {steps}
expected_batch = 64                # DPZero's RoBERTa setting: batch 64
lr = {lr}
eval_every = 0
"""

PRIVATE = """[clipper]
name = "scalar"
bound = {bound}

[privacy]
epsilon = {epsilon}
delta = 1e-5
accountant = "pld"
report = ["rdp", "pld"]
"""

LRS = {"dpzero": [1e-3, 3e-3, 1e-2], "two_point": [1e-3, 3e-3, 1e-2]}
BOUND = 2.0  # C


def run(out: Path, name: str, *, data: str, device: str, steps: int, seed: int, estimator: str, lr: float,
        epsilon: float | None, tuning: bool) -> dict:
    privacy = PRIVATE.format(bound=BOUND, epsilon=epsilon) if epsilon else ""
    eval_line = "held_out_public = true           # tuning: a held-out part of the training file" if tuning \
        else f'eval_path = "{data}/sst2/dev.tsv"'
    recipe = out / f"{name}.toml"
    recipe.write_text(RECIPE.format(seed=seed, device=device, data=data, eval_line=eval_line, estimator=estimator,
                                    privacy=privacy, steps=steps, lr=lr))
    done = subprocess.run(["zofw", "run", str(recipe), "--json", "--out", str(out / name)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{name}: {result['metrics_before']['accuracy']:.2f} -> {result['metrics']['accuracy']:.2f} "
          f"eps {result['privacy'].get('epsilon')} ({result['seconds']} s)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 13, 21])
    parser.add_argument("--lr", type=float, nargs=2, metavar=("DPZERO", "TWO_POINT"),
                        help="skip tuning: the step sizes of an earlier tuning")
    parser.add_argument("--parallel", type=int, default=3, help="runs at once (they share the GPU)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    common = dict(data=str(Path(args.data).resolve()), device=args.device, steps=args.steps)
    methods = {"dpzero ε=2": ("dpzero", 2.0), "dpzero ε=6": ("dpzero", 6.0), "two_point (non-private)": ("two_point", None)}
    pool = ThreadPoolExecutor(args.parallel)
    tuned: dict[str, float] = {}
    if args.lr:
        tuned = {"dpzero": args.lr[0], "two_point": args.lr[1]}
    else:
        for estimator, epsilon in (("dpzero", 6.0), ("two_point", None)):
            runs = {lr: pool.submit(run, args.out, f"tune-{estimator}-{lr:g}", seed=42, estimator=estimator, lr=lr,
                                    epsilon=epsilon, tuning=True, **common) for lr in LRS[estimator]}
            scores = {lr: future.result()["metrics"]["accuracy"] for lr, future in runs.items()}
            tuned[estimator] = max(scores, key=scores.get)
    table: dict[str, list[float]] = {name: [] for name in methods}
    untrained: list[float] = []
    futures = []
    for seed in args.seeds:
        for name, (estimator, epsilon) in methods.items():
            tag = name.split()[0] + (f"-eps{epsilon:g}" if epsilon else "")
            futures.append((name, pool.submit(run, args.out, f"{tag}-seed{seed}", seed=seed, estimator=estimator,
                                              lr=tuned[estimator], epsilon=epsilon, tuning=False, **common)))
    for name, future in futures:
        result = future.result()
        table[name].append(result["metrics"]["accuracy"])
        untrained.append(result["metrics_before"]["accuracy"])
    summary = {"tuned_lr": tuned, "steps": args.steps, "seeds": args.seeds, "clip_bound": BOUND,
               "untrained": statistics.mean(untrained),
               "accuracy": {name: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
                                   "runs": v} for name, v in table.items()}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())

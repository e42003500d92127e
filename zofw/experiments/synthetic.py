"""The synthetic experiment of the DPZero paper (Zhang et al., ICML 2024, Section 5.1 and Appendix B.1).

Data: n points x_i ∈ R^d with i.i.d. N(1, 1) coordinates (train and test alike); loss
f(θ; x) = ½ (θ − x)ᵀ A (θ − x) with A diagonal, ‖A‖₂ = 1 and effective rank r = Tr(A): ⌊r⌋ eigenvalues
equal to 1, one equal to r − ⌊r⌋ (when fractional), the rest 0, for r = d, √d or ln d. The objective's
gradient is ∇F(θ) = A(θ − x̄); a method's score is min over its grid of ‖∇F(θ_T)‖ (train x̄; the test
set's x̄ is reported beside it). θ_0 = 0.

Methods, full batch (every example every step), (ε, δ) = (2, 1e-6) under add/remove-one neighbours:
- DP-GD: per-example gradients A(θ − x_i) clipped to L2 norm C, sum plus N(0, σ²C² I_d), divided by n;
- DPGD-0th: d_i u with d_i the central difference along u ~ N(0, I_d), clipped to norm C, plus d-dim noise;
- DPZero: d_i clipped to [−C, C], sum plus N(0, σ²C²), divided by n, times u.
T full-batch Gaussian releases with noise multiplier σ√T are one Gaussian with multiplier σ: σ is
calibrated once (PLD) and scaled by √T for each T in the grid.

How it is computed (exactly what the algorithms do, at a cost that fits a CI machine):
- central differences are exact on a quadratic: d_i = (f(θ+λu) − f(θ−λu)) / 2λ = uᵀA(θ − x_i) for any
  λ; it is computed in that closed form, in float64 (λ = 1e-4 in the paper);
- A vanishes outside the s = ⌈r⌉ coordinates it weights, so θ, the updates and the gradient are
  simulated on those s coordinates; DPGD-0th's clip needs ‖u‖ over all d coordinates, which is
  ‖u_S‖² plus an independent χ²(d − s) draw — the same distribution as drawing all of u;
- every (η, C) of the grid runs at once as a batch, sharing the step's direction and standard-normal
  noise draws (common random numbers); each T is its own run.
This is a simulation study, so its randomness is seeded (torch generators), not the secure stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch

MODES = ("d", "sqrt", "log")
METHODS = ("dpzero", "dpgd0", "dpgd")


@dataclass(frozen=True)
class Grid:
    dims: tuple[int, ...]
    steps: tuple[int, ...]
    lrs: tuple[float, ...]
    clips: tuple[float, ...]
    examples: int

    @property
    def runs(self) -> int:
        return len(self.steps)


FULL = Grid(dims=(20, 50, 100, 200, 500, 1000, 2000), steps=tuple(10 * 2**k for k in range(10)),
            lrs=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0), clips=(0.1, 0.3, 1, 3, 10, 30, 100, 300), examples=10_000)
QUICK = Grid(dims=(20, 100, 500, 2000), steps=(10, 40, 160, 640), lrs=(1e-3, 1e-2, 1e-1, 1.0),
             clips=(0.3, 3, 30, 300), examples=2_000)


def effective_rank(mode: str, dims: int) -> float:
    return {"d": float(dims), "sqrt": math.sqrt(dims), "log": math.log(dims)}[mode]


def eigenvalues(rank: float) -> torch.Tensor:
    """The nonzero eigenvalues of A: ⌊r⌋ ones and the fractional rest (so Tr A = r, ‖A‖₂ = 1)."""
    whole, rest = int(math.floor(rank)), rank - math.floor(rank)
    values = [1.0] * whole + ([rest] if rest > 1e-12 else [])
    return torch.tensor(values, dtype=torch.float64)


def single_release_sigma(epsilon: float, delta: float) -> float:
    """σ of one Gaussian release (full batch) meeting (ε, δ) under add/remove-one neighbours (PLD)."""
    from zofw.privacy.calibrate import calibrate_noise_multiplier
    from zofw.privacy.ledger import PrivacyEvent
    from zofw_privacy.accountants import PLDAccountant

    accountant = PLDAccountant(PLDAccountant.Options())
    return calibrate_noise_multiplier(lambda s: accountant.epsilon([PrivacyEvent("gaussian", s, 1.0, 1)], delta),
                                      epsilon)


@dataclass
class Problem:
    """One (mode, d, seed): the data restricted to the s coordinates A weights."""

    dims: int
    weights: torch.Tensor  # (s,) eigenvalues of A
    train: torch.Tensor  # (n, s)
    train_mean: torch.Tensor  # (s,)
    test_mean: torch.Tensor  # (s,)

    @classmethod
    def build(cls, mode: str, dims: int, examples: int, seed: int) -> "Problem":
        weights = eigenvalues(effective_rank(mode, dims))
        generator = torch.Generator().manual_seed(seed * 1_000_003 + dims)
        train = torch.randn(examples, len(weights), generator=generator, dtype=torch.float64) + 1.0
        test = torch.randn(examples, len(weights), generator=generator, dtype=torch.float64) + 1.0
        return cls(dims, weights, train, train.mean(0), test.mean(0))

    def gradient_norms(self, theta: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return (self.weights * (theta - mean)).norm(dim=-1)


def run_method(method: str, problem: Problem, steps: int, lrs: torch.Tensor, clips: torch.Tensor, sigma: float,
               seed: int) -> torch.Tensor:
    """θ_T for every grid point (G = len(lrs) = len(clips)), shape (G, s)."""
    generator = torch.Generator().manual_seed(seed * 7919 + steps)
    n, s = problem.train.shape
    a, x = problem.weights, problem.train
    theta = torch.zeros(len(lrs), s, dtype=torch.float64)
    noise_scale = (sigma * math.sqrt(steps)) * clips  # (G,): T releases at σ√T are one release at σ
    x_norms = ((a * x) ** 2).sum(1)  # (n,) ‖a∘x_i‖²
    for _ in range(steps):
        if method == "dpgd":
            # per-example gradients g_i = a∘(θ − x_i) never materialised: their norms and the clipped sum
            # come from (G, s) × (s, n) products
            squared = ((a * theta) ** 2).sum(1)[:, None] - 2 * (a * a * theta) @ x.T + x_norms[None, :]
            factor = torch.clamp(clips[:, None] / squared.clamp_min(1e-300).sqrt(), max=1.0)  # (G, n)
            total = a * (theta * factor.sum(1)[:, None] - factor @ x)
            noise = torch.randn(s, generator=generator, dtype=torch.float64)
            update = (total + noise_scale[:, None] * noise) / n
        else:
            u = torch.randn(s, generator=generator, dtype=torch.float64)
            au = a * u
            derivatives = (theta @ au)[:, None] - (x @ au)[None, :]  # (G, n): d_i = uᵀA(θ − x_i)
            if method == "dpzero":
                clipped = derivatives.clamp(-clips[:, None], clips[:, None]).sum(1)
                noise = torch.randn((), generator=generator, dtype=torch.float64)
                update = ((clipped + noise_scale * noise) / n)[:, None] * u
            else:  # dpgd0: clip ‖d_i u‖ = |d_i|·‖u‖, ‖u‖ over all d coordinates
                outside = torch.randn(problem.dims - s, generator=generator, dtype=torch.float64)  # χ²(d − s)
                norm_u = math.sqrt(float(u @ u) + float(outside @ outside))
                factor = torch.clamp(clips[:, None] / (derivatives.abs() * norm_u).clamp_min(1e-300), max=1.0)
                total = (factor * derivatives).sum(1)[:, None] * u
                noise = torch.randn(s, generator=generator, dtype=torch.float64)
                update = (total + noise_scale[:, None] * noise) / n
        theta = theta - lrs[:, None] * update
    return theta


@dataclass
class Result:
    """Best gradient norms: mode → method → d → list over seeds of (train, test)."""

    best: dict = field(default_factory=dict)

    def add(self, mode: str, method: str, dims: int, train: float, test: float) -> None:
        self.best.setdefault(mode, {}).setdefault(method, {}).setdefault(dims, []).append((train, test))

    def means(self, which: int = 0) -> dict:
        return {mode: {method: {d: sum(v[which] for v in values) / len(values) for d, values in by_d.items()}
                       for method, by_d in methods.items()} for mode, methods in self.best.items()}


def run(grid: Grid, seeds: int, epsilon: float = 2.0, delta: float = 1e-6, modes: Iterable[str] = MODES,
        progress: Optional[Callable[[int], None]] = None) -> Result:
    """Every (mode, method, d, seed), each at its best (T, η, C); ``progress`` is told each finished run."""
    sigma = single_release_sigma(epsilon, delta)
    lr_grid, clip_grid = torch.meshgrid(torch.tensor(grid.lrs, dtype=torch.float64),
                                        torch.tensor(grid.clips, dtype=torch.float64), indexing="ij")
    lrs, clips = lr_grid.flatten(), clip_grid.flatten()
    result = Result()
    for mode in modes:
        for dims in grid.dims:
            for seed in range(seeds):
                problem = Problem.build(mode, dims, grid.examples, seed)
                for method in METHODS:
                    best_train, best_test = math.inf, math.inf
                    for steps in grid.steps:
                        theta = run_method(method, problem, steps, lrs, clips, sigma, seed)
                        train = problem.gradient_norms(theta, problem.train_mean)
                        train = torch.where(torch.isfinite(train), train, torch.tensor(math.inf, dtype=torch.float64))
                        index = int(train.argmin())
                        if float(train[index]) < best_train:
                            best_train = float(train[index])
                            best_test = float(problem.gradient_norms(theta[index], problem.test_mean))
                        if progress:
                            progress(1)
                    result.add(mode, method, dims, best_train, best_test)
    return result


def table(result: Result) -> str:
    """Markdown: one row per (mode, method), the mean best train gradient norm per d (test in brackets)."""
    train, test = result.means(0), result.means(1)
    lines = []
    for mode, methods in train.items():
        dims = sorted(next(iter(methods.values())))
        lines.append(f"\n**r = {mode if mode != 'd' else 'd'}** (effective rank {'d' if mode == 'd' else ('√d' if mode == 'sqrt' else 'ln d')})\n")
        lines.append("| method | " + " | ".join(f"d = {d}" for d in dims) + " | growth 20→max |")
        lines.append("|---|" + "---|" * (len(dims) + 1))
        for method, by_d in methods.items():
            cells = [f"{by_d[d]:.3g} ({test[mode][method][d]:.3g})" for d in dims]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {by_d[dims[-1]] / by_d[dims[0]]:.2f}× |")
    return "\n".join(lines)


def plot(result: Result, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = result.means(0)
    figure, axes = plt.subplots(1, len(means), figsize=(5 * len(means), 4), squeeze=False)
    for axis, (mode, methods) in zip(axes[0], means.items()):
        for method, by_d in methods.items():
            dims = sorted(by_d)
            axis.plot(dims, [by_d[d] for d in dims], marker="o", label=method)
        axis.set(xscale="log", yscale="log", xlabel="d", ylabel="best ‖∇F(θ_T)‖ (train)",
                 title={"d": "r = d", "sqrt": "r = √d", "log": "r = ln d"}[mode])
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)

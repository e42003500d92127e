"""An empirical lower bound on ε for the private release as implemented (Jagielski et al. 2020,
"Auditing differentially private machine learning"; Nasr et al. 2021, 2023).

What is audited: ONE step's release, without subsampling, through the real :class:`PrivateRelease` of a
recipe (its clipper, noise, estimator, σ and a fresh secure stream). Neighbouring datasets: D, a fixed
batch of b examples (some beyond the clip bound), and D′ = D plus one canary at the clip bound, on the
direction that moves the clipped sum furthest. Each side is released ``trials`` times in one vectorised
call (the leading dimension of the values is the trial). The outputs are projected onto the canary's
direction; a threshold test is chosen on the first half of the trials and its false-positive and
false-negative rates are bounded on the second half by one-sided Clopper–Pearson intervals (each at
(1 − confidence)/2, so both hold together with probability ≥ confidence). Any (ε, δ)-DP release obeys
FPR + e^ε·FNR ≥ 1 − δ in both directions, so ln((1 − δ − FNR⁺)/FPR⁺) is a lower bound on ε.

The claim it is compared with: ε at the recipe's δ of the event the release records, taken with sample
rate 1 and one step, from the recipe's calibrating accountant. A lower bound above the claim means the
implementation leaks more than it accounts for (noise scaled wrongly, a clip that does not bound, …).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from zofw.errors import BadInput
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.accountant import Accountant
from zofw.slots.estimator import PerExample

if TYPE_CHECKING:
    from zofw.assemble import Components
    from zofw.config import Recipe

BATCH = 8  # examples in D; D′ has one more, the canary


@dataclass
class AuditResult:
    epsilon_claimed: float
    epsilon_lower_bound: float
    epsilon_estimate: float  # the same test's point estimate on the second half (may be inf)
    confidence: float
    trials: int  # releases per side: half choose the test, half bound its error rates
    noise_multiplier: float
    clip_bound: float
    delta: float
    mechanism: str
    accountant: str
    canary_shift: float  # how far the canary moved the clipped sum, in the noise's sensitivity norm
    sensitivity: float  # what the clipper states that distance is at most
    test: str  # the chosen threshold test, for the record
    audited: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.epsilon_lower_bound <= self.epsilon_claimed

    def record(self) -> dict[str, Any]:
        data = dict(vars(self), passed=self.passed)
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in data.items()}


# --- the statistics -----------------------------------------------------------------------------


def rate_upper(errors: np.ndarray, total: int, alpha: float) -> np.ndarray:
    """One-sided Clopper–Pearson upper bounds, each at level 1 − ``alpha``, on rates of ``errors``/``total``."""
    from scipy.stats import beta  # a dependency of dp-accounting

    errors = np.asarray(errors, dtype=np.float64)
    upper = beta.ppf(1 - alpha, errors + 1, np.maximum(total - errors, 1))
    return np.where(errors >= total, 1.0, upper)


def epsilon_from_rates(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """max over both error directions of ln((1 − δ − one rate) / the other), clamped at 0 (inf if a rate is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        one = np.log(np.maximum(1 - delta - fnr, 0) / fpr)
        other = np.log(np.maximum(1 - delta - fpr, 0) / fnr)
    best = np.fmax(np.nan_to_num(one, nan=0.0, posinf=np.inf), np.nan_to_num(other, nan=0.0, posinf=np.inf))
    return np.maximum(best, 0.0)


def error_counts(negative: np.ndarray, positive: np.ndarray, thresholds: np.ndarray,
                 sign: int) -> tuple[np.ndarray, np.ndarray]:
    """False positives among D's scores and false negatives among D′'s, for the test "D′ if sign·(s − t) > 0"
    (sign −1 reads "D′ if s ≤ t")."""
    neg_above = len(negative) - np.searchsorted(np.sort(negative), thresholds, side="right")
    pos_above = len(positive) - np.searchsorted(np.sort(positive), thresholds, side="right")
    if sign > 0:
        return neg_above, len(positive) - pos_above
    return len(negative) - neg_above, pos_above


def distinguish(negative: np.ndarray, positive: np.ndarray, delta: float,
                confidence: float) -> tuple[float, float, str]:
    """(lower bound, point estimate, test): choose the test on the first halves, bound it on the second."""
    alpha = (1 - confidence) / 2  # one tail for each of the two rates
    half_n, half_p = len(negative) // 2, len(positive) // 2
    choose_n, choose_p = negative[:half_n], positive[:half_p]
    pooled = np.sort(np.concatenate([choose_n, choose_p]))
    # candidate thresholds: every score near either tail, geometrically sparser towards the middle
    ranks = np.geomspace(1, len(pooled), 1500).astype(np.int64) - 1
    thresholds = np.unique(pooled[np.concatenate([ranks, len(pooled) - 1 - ranks])])
    best = (-1.0, 0.0, 1)
    for sign in (1, -1):
        fp, fn = error_counts(choose_n, choose_p, thresholds, sign)
        scores = epsilon_from_rates(rate_upper(fp, half_n, alpha), rate_upper(fn, half_p, alpha), delta)
        index = int(np.argmax(scores))
        if scores[index] > best[0]:
            best = (float(scores[index]), float(thresholds[index]), sign)
    _, threshold, sign = best
    bound_n, bound_p = negative[half_n:], positive[half_p:]
    fp, fn = error_counts(bound_n, bound_p, np.array([threshold]), sign)
    lower = epsilon_from_rates(rate_upper(fp, len(bound_n), alpha), rate_upper(fn, len(bound_p), alpha), delta)
    estimate = epsilon_from_rates(fp / len(bound_n), fn / len(bound_p), delta)
    test = (f"D′ if projection {'>' if sign > 0 else '≤'} {threshold:.6g}: "
            f"{int(fp[0])}/{len(bound_n)} false positives, {int(fn[0])}/{len(bound_p)} false negatives")
    return float(lower[0]), float(estimate[0]), test


# --- the release --------------------------------------------------------------------------------


def canary(release: PrivateRelease) -> torch.Tensor:
    """A (K,) row at the clip bound on the direction the clipper lets move the sum furthest, as the
    noise measures distance: all coordinates at +C (scalar-style) or one (L2-style), whichever is larger."""
    dims, bound = release.dims, release.clipper.options.bound
    candidates = torch.stack([torch.full((dims,), bound, dtype=torch.float64),
                              torch.nn.functional.one_hot(torch.tensor(0), dims).to(torch.float64) * bound])
    clipped = release.clipper.clip(candidates)
    norms = clipped.abs().sum(-1) if release.noise.sensitivity_norm == "l1" else clipped.norm(dim=-1)
    return candidates[int(torch.argmax(norms))]


def release_many(release: PrivateRelease, batch: torch.Tensor, trials: int) -> torch.Tensor:
    """``trials`` independent releases of one batch (b, K) through the real release: (trials, K)."""
    released = release.privatize(PerExample(batch.expand(trials, *batch.shape)))
    if released.parameter_noise is None:
        return released.coefficients
    # parameter-space noise: the released d-vector Σ_k c_k·u_k + noise, read along orthonormal u_k
    return released.coefficients + released.parameter_noise(torch.zeros_like(released.coefficients))


def check_settings(trials: int, confidence: float) -> None:
    if trials < 1000:
        raise BadInput(f"--trials must be at least 1000 (got {trials})")
    if not 0.5 < confidence < 1:
        raise BadInput(f"--confidence must be in (0.5, 1) (got {confidence})")


def audit_release(release: PrivateRelease, accountant: Accountant, accountant_name: str, trials: int,
                  confidence: float, audited: str = "") -> AuditResult:
    """Audit one step of ``release`` (ledger in memory) against ``accountant``'s claim for the event it records."""
    check_settings(trials, confidence)
    started = time.perf_counter()
    bound, dims = release.clipper.options.bound, release.dims
    generator = torch.Generator().manual_seed(0)  # public and fixed: D is the same in every trial
    batch = torch.randn(BATCH, dims, generator=generator, dtype=torch.float64) * 1.5 * bound
    row = canary(release)
    with_canary = torch.cat([batch, row[None]])
    shift_vector = release.clipped_sum(PerExample(with_canary)) - release.clipped_sum(PerExample(batch))
    direction = shift_vector / shift_vector.norm()
    scores = [(release_many(release, b, trials) @ direction.to(torch.float64)).numpy()
              for b in (batch, with_canary)]
    lower, estimate, test = distinguish(scores[0], scores[1], release.ledger.delta, confidence)
    event = replace(release.ledger.events[0], sample_rate=1.0, steps=1)  # what the release recorded
    claimed = accountant.epsilon([event], release.ledger.delta)
    norm = release.noise.sensitivity_norm
    shift = float(shift_vector.abs().sum() if norm == "l1" else shift_vector.norm())
    return AuditResult(
        epsilon_claimed=claimed, epsilon_lower_bound=lower, epsilon_estimate=estimate, confidence=confidence,
        trials=trials, noise_multiplier=release.noise_multiplier, clip_bound=bound, delta=release.ledger.delta,
        mechanism=event.mechanism, accountant=accountant_name, canary_shift=shift,
        sensitivity=release.clipper.sensitivity(dims, norm), test=test,
        audited=audited or f"one release, no subsampling: {BATCH} fixed examples vs the same plus a canary at C",
        seconds=round(time.perf_counter() - started, 2))


def audit_recipe(recipe: "Recipe", parts: "Components", trials: int, confidence: float) -> AuditResult:
    """Build the release a run of ``recipe`` would use (σ calibrated the same way) and audit one step."""
    from zofw.planning import plan_privacy, training_examples

    estimator = parts.estimator
    if not estimator.private:
        raise BadInput(f"estimator '{estimator.name}' is not private: there is no private release to audit")
    _, sampling = training_examples(recipe, parts)
    # σ exactly as a run decides it; the run's own release (ledger on disk) is not used
    sigma = plan_privacy(recipe, parts, sampling, SecretStream(), Path("unused")).noise_multiplier
    assert sigma is not None and recipe.privacy is not None
    release = PrivateRelease(parts.clipper, parts.noise, sigma, sampling.sample_rate, estimator,
                             recipe.train.expected_batch, SecretStream(), PrivacyLedger(recipe.privacy.delta))
    name = recipe.privacy.accountant
    described = (f"one {estimator.name} release ({parts.clipper.name} clip, {parts.noise.name} noise), no "
                 f"subsampling: {BATCH} fixed examples vs the same plus a canary at C; the run samples at "
                 f"q = {sampling.sample_rate:.4g} for {recipe.train.steps} steps")
    return audit_release(release, parts.accountants[name], name, trials, confidence, described)

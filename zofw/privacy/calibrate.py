"""Find the noise multiplier σ that spends a target ε: a bracketed root search on a monotone ε(σ)."""

from __future__ import annotations

import math
from typing import Callable

from zofw.errors import BadInput


def calibrate_noise_multiplier(
    epsilon_of: Callable[[float], float], target_epsilon: float, rel_tol: float = 1e-3
) -> float:
    """Smallest σ (within ``rel_tol``) with ``epsilon_of(σ) <= target_epsilon``.

    ε(σ) decreases in σ. Bracket by doubling and halving, then narrow the bracket by regula falsi on
    log ε against log σ (Illinois variant; nearly linear there, so a few accountant calls suffice —
    each PLD or PRV call can take seconds). The value returned is always the upper end of the final
    bracket, so it meets the target.
    """
    if target_epsilon <= 0:
        raise BadInput(f"privacy.epsilon must be positive, got {target_epsilon}")
    low, high = 0.25, 1.0
    eps_high = epsilon_of(high)
    while eps_high > target_epsilon:
        low, high = high, high * 2
        if high > 1e5:
            raise BadInput(f"no noise multiplier below 1e5 reaches ε = {target_epsilon}")
        eps_high = epsilon_of(high)
    eps_low = epsilon_of(low)
    while eps_low <= target_epsilon:
        if low < 1e-3:
            return low
        low, high, eps_high = low / 2, low, eps_low
        eps_low = epsilon_of(low)
    # invariant: ε(low) > target ≥ ε(high); residuals in log space, positive at low
    log_target = math.log(target_epsilon)

    def residual(eps: float) -> float:
        return math.log(eps) - log_target if eps > 0 and math.isfinite(eps) else math.inf

    f_low, f_high = residual(eps_low), residual(eps_high)
    side = 0
    while high - low > rel_tol * high:
        if math.isfinite(f_low) and f_low != f_high:
            x_low, x_high = math.log(low), math.log(high)
            guess = math.exp(x_high - f_high * (x_high - x_low) / (f_high - f_low))
        else:
            guess = (low + high) / 2
        # stay strictly inside the bracket so every call narrows it
        margin = rel_tol * high / 4
        middle = min(max(guess, low + margin), high - margin)
        f_middle = residual(epsilon_of(middle))
        if f_middle <= 0:
            high, f_high = middle, f_middle
            if side == -1:
                f_low /= 2  # Illinois: stop the stale end from pinning the secant
            side = -1
        else:
            low, f_low = middle, f_middle
            if side == 1:
                f_high /= 2
            side = 1
    return high


def calibrate_with(accountant, events_of: Callable[[float], list], target_epsilon: float, delta: float) -> float:
    """σ from ``accountant`` for ``target_epsilon``; only an accountant whose ε is an upper bound may choose
    σ (an approximation could under-noise)."""
    if not accountant.upper_bound:
        raise BadInput(f"accountant '{accountant.name}' reports an approximation of ε, not an upper bound: "
                       "it cannot calibrate σ (choose rdp, pld or prv)")
    return calibrate_noise_multiplier(lambda s: accountant.epsilon(events_of(s), delta), target_epsilon)


def affordable_steps(epsilon_at: Callable[[int], float], steps: int, max_epsilon: float) -> int:
    """The largest t ≤ ``steps`` with ε(t) ≤ ``max_epsilon`` (ε grows with t: a binary search, log₂ T calls)."""
    if epsilon_at(steps) <= max_epsilon:
        return steps
    low, high = 0, steps  # ε(low) ≤ max (ε(0) = 0), ε(high) > max
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if epsilon_at(middle) <= max_epsilon else (low, middle)
    return low

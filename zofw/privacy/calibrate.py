"""Find the noise multiplier σ that spends a target ε: bisection on a monotone ε(σ)."""

from __future__ import annotations

from typing import Callable

from zofw.errors import BadInput


def calibrate_noise_multiplier(
    epsilon_of: Callable[[float], float], target_epsilon: float, rel_tol: float = 1e-3
) -> float:
    """Smallest σ (within ``rel_tol``) with ``epsilon_of(σ) <= target_epsilon``.

    ε(σ) decreases in σ, so bracket by doubling and halving, then bisect; the value returned always
    satisfies the target (the upper end of the final bracket).
    """
    if target_epsilon <= 0:
        raise BadInput(f"privacy.epsilon must be positive, got {target_epsilon}")
    low, high = 0.25, 1.0
    while epsilon_of(high) > target_epsilon:
        low, high = high, high * 2
        if high > 1e5:
            raise BadInput(f"no noise multiplier below 1e5 reaches ε = {target_epsilon}")
    while low > 1e-3 and epsilon_of(low) <= target_epsilon:
        low, high = low / 2, low
    while high - low > rel_tol * high:
        middle = (low + high) / 2
        if epsilon_of(middle) <= target_epsilon:
            high = middle
        else:
            low = middle
    return high

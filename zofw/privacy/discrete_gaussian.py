"""Exact sampling of the discrete Gaussian N_Z(0, σ²) (Canonne, Kamath and Steinke, NeurIPS 2020).

P[X = x] ∝ exp(−x²/2σ²) over the integers, sampled with rational arithmetic and uniform integers from the
secure stream only: no floating-point step can leak through the low bits of the noise (the attack on
naive floating-point samplers, Mironov 2012). Algorithm 1 (Bernoulli(e^−γ)), Algorithm 2 (discrete
Laplace) and Algorithm 3 (discrete Gaussian by rejection from a discrete Laplace) of the paper.
"""

from __future__ import annotations

import math
from fractions import Fraction

from zofw.privacy.secure import SecretStream


def uniform_below(n: int, source: SecretStream) -> int:
    """A uniform integer in [0, n) by rejection from the stream's bytes (exact for any n ≥ 1)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    bits = max(1, (n - 1).bit_length())
    count = (bits + 7) // 8
    while True:
        value = int.from_bytes(source.random_bytes(count), "little") & ((1 << bits) - 1)
        if value < n:
            return value


def bernoulli(p: Fraction, source: SecretStream) -> bool:
    """True with probability exactly p ∈ [0, 1]."""
    return uniform_below(p.denominator, source) < p.numerator


def bernoulli_exp(gamma: Fraction, source: SecretStream) -> bool:
    """True with probability exactly exp(−γ), γ ≥ 0 (Algorithm 1)."""
    while gamma > 1:  # e^−γ = (e^−1)^⌊γ⌋ · e^−(γ − ⌊γ⌋)
        if not bernoulli_exp(Fraction(1), source):
            return False
        gamma -= 1
    k = 1
    while bernoulli(gamma / k, source):
        k += 1
    return k % 2 == 1


def discrete_laplace(t: int, source: SecretStream) -> int:
    """P[Y = y] ∝ exp(−|y|/t), t ≥ 1 an integer (Algorithm 2)."""
    while True:
        u = uniform_below(t, source)
        if not bernoulli_exp(Fraction(u, t), source):
            continue
        v = 0
        while bernoulli_exp(Fraction(1), source):
            v += 1
        magnitude = u + t * v
        negative = bernoulli(Fraction(1, 2), source)
        if negative and magnitude == 0:
            continue
        return -magnitude if negative else magnitude


def discrete_gaussian(sigma_squared: Fraction, source: SecretStream) -> int:
    """P[X = x] ∝ exp(−x²/(2σ²)) over the integers, σ² > 0 rational (Algorithm 3)."""
    if sigma_squared <= 0:
        raise ValueError("σ² must be positive")
    t = math.isqrt(sigma_squared.numerator // sigma_squared.denominator) + 1
    while True:
        y = discrete_laplace(t, source)
        gamma = (abs(y) - sigma_squared / t) ** 2 / (2 * sigma_squared)
        if bernoulli_exp(gamma, source):
            return y

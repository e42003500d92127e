"""Plain-PyTorch reference of the counter-based direction generator (any device; used on CPU).

* Philox4x32-R (R = 10 for the known-answer vectors, 7 for directions), as Triton 3.6's
  ``tl.randint4x`` (bit for bit). Key (k0, k1) = (low, high) 32 bits of the 64-bit seed. Counter
  (c0, c1, c2, c3) = (low, high 32 bits of the int64 counter, 0, 0). Each round:
  ``c0, c1, c2, c3 = hi(B·c2) ^ c1 ^ k0, lo(B·c2), hi(A·c0) ^ c3 ^ k1, lo(A·c0)``, then
  ``k0 += 0x9E3779B9, k1 += 0xBB67AE85`` (A = 0xD2511F53, B = 0xCD9E8D57; all mod 2^32).
* Eight normals per counter: output word w gives the Box-Muller pair of lanes (2w, 2w + 1) from its two
  16-bit halves, ``u1 = (low + 1/2)·2^-16``, ``u2 = (high + 1/2)·2^-16`` (exact in float32, never 0 or 1),
  ``r = sqrt(-2·log u1)``, ``θ = float32(2π)·u2``, lanes (r·cos θ, r·sin θ), in float32.

Element i of the direction drawn from ``seed`` is lane ``i % 8`` of ``randn8x(seed, i // 8)``.

Why 16-bit uniforms: a pass over the weights that draws two directions was bound by Philox's integer
multiplies (an H100 ran it at 7.2 ms over 2.65e9 float16 weights against a 5.3 ms memory floor);
one Philox call for eight normals instead of four brought it to 5.6 ms. The price is in the far tail:
|u_i| ≤ sqrt(2·17·ln 2) = 4.85, and the radius takes 2^16 values, so the mass beyond 4.7σ
(P(|z| > 4.7) ≈ 2.6e-6) is lumped into the last levels; E[u_i²] = 1 − 5e-6 (the midpoint rule on the first
bin). Zeroth-order estimators need E[uuᵀ] = I, which this keeps far below any other error of a step.

The stochastic-rounding stream of ``rounding_seed`` gives 16 bits per element from Philox4x32-7 at counter
``(lo(i // 8), hi(i // 8), 1, 0)``: element 8c + 4h + w takes half h (0: low, 1: high) of output word w.
Rounding bits need uniformity, not cryptographic strength: 7 rounds pass BigCrush (Salmon et al., SC'11).
The third counter word 1 keeps the stream disjoint from every direction stream (which all have c2 = 0),
even when a rounding seed equals a direction seed.

uint32 arithmetic is done in int64 with explicit masking; 32×32→64-bit products are split in 16-bit halves
so that no int64 product overflows.
"""

from __future__ import annotations

import math
import struct
from typing import Callable, Sequence

import torch

MASK32 = 0xFFFFFFFF
_ROUND_A, _ROUND_B = 0xD2511F53, 0xCD9E8D57
_KEY_A, _KEY_B = 0x9E3779B9, 0xBB67AE85
_TWO_PI = 6.283185307179586
N_ROUNDS = 10  # Philox4x32-10: Random123's default (the known-answer vectors)
# Directions and rounding bits use 7 rounds, which pass TestU01's BigCrush (Salmon et al., SC'11, table 2):
# they are public and need statistical quality only, and 10 rounds made a pass that draws two directions
# compute-bound on an H100 (7.3 ms against 5.85 ms over 2.65e9 float16 weights).
DIRECTION_ROUNDS = 7
ROUNDING_ROUNDS = DIRECTION_ROUNDS  # the kernel draws both with one Philox helper
CHUNK = 1 << 20  # elements per step of the reference loops: bounds temporaries, not a semantic choice
MAX_TERMS = 3  # directions per pass (the kernel's arguments); zofw.kernels chunks longer updates
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)  # float64: reference path only (tests, CPU)


def f32(x: float) -> float:
    """``x`` rounded to float32 (how the Triton kernel receives a Python float argument)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _mulhilo(a: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32 bits of the 64-bit product of the uint32 constant ``a`` and uint32s ``x``."""
    p_lo = x * (a & 0xFFFF)  # < 2^48
    p_hi = x * (a >> 16)  # < 2^48; the full product is p_hi·2^16 + p_lo
    hi = (p_lo >> 16).add_(p_hi).bitwise_right_shift_(16)
    lo = (p_hi & 0xFFFF).bitwise_left_shift_(16).add_(p_lo).bitwise_and_(MASK32)
    return hi, lo


def philox4x32(seed: int, c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor,
               n_rounds: int = N_ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32-``n_rounds`` of uint32 counters (int64 tensors) under the 64-bit key ``seed``."""
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for _ in range(n_rounds):
        hi_b, lo_b = _mulhilo(_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0, k1 = (k0 + _KEY_A) & MASK32, (k1 + _KEY_B) & MASK32
    return c0, c1, c2, c3


def _split(counters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return counters & MASK32, (counters >> 32) & MASK32


def randint4x(seed: int, counters: torch.Tensor, n_rounds: int = DIRECTION_ROUNDS) -> tuple[torch.Tensor, ...]:
    """``tl.randint4x(seed, counters, n_rounds)`` for int64 counters, as uint32 values in int64 tensors."""
    lo, hi = _split(counters)
    zero = torch.zeros_like(lo)
    return philox4x32(seed, lo, hi, zero, zero, n_rounds)


def rounding_bits8x(seed: int, counters: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The stochastic-rounding stream: 8 lanes of 16 bits from Philox-7 at counter (lo, hi, 1, 0)."""
    lo, hi = _split(counters)
    words = philox4x32(seed, lo, hi, torch.ones_like(lo), torch.zeros_like(lo), ROUNDING_ROUNDS)
    return tuple(w & 0xFFFF for w in words) + tuple(w >> 16 for w in words)


def half_to_uniform(bits: torch.Tensor) -> torch.Tensor:
    """16-bit values (int64 tensor) → float32 (bits + 1/2)·2^-16 in (0, 1): exact, never 0 or 1."""
    return bits.to(torch.float32) * 2.0 ** -16 + 2.0 ** -17


def box_muller(u1: torch.Tensor, u2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair (r·cos θ, r·sin θ), r = sqrt(−2·log u1), θ = 2π·u2, in float32."""
    r = torch.sqrt(torch.log(u1) * -2.0)
    theta = u2 * f32(_TWO_PI)
    return r * torch.cos(theta), r * torch.sin(theta)


def randn8x(seed: int, counters: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Eight float32 normals per counter: lanes (2w, 2w + 1) from the halves of Philox-7 output word w."""
    lanes: list[torch.Tensor] = []
    for word in randint4x(seed, counters):
        lanes.extend(box_muller(half_to_uniform(word & 0xFFFF), half_to_uniform(word >> 16)))
    return tuple(lanes)


def _lanes(gen: Callable[[int, torch.Tensor], tuple[torch.Tensor, ...]], seed: int, offset: int, numel: int,
           device: torch.device | str, width: int) -> torch.Tensor:
    """Elements offset..offset+numel-1 of a stream whose element i is lane i % width at counter i // width."""
    first, last = offset // width, (offset + numel - 1) // width
    counters = torch.arange(first, last + 1, dtype=torch.int64, device=device)
    head = offset - width * first
    return torch.stack(gen(seed, counters), dim=1).flatten()[head:head + numel]


def normal(seed: int, offset: int, numel: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """float32 u[offset:offset+numel] of the direction drawn from ``seed`` (one chunk at a time)."""
    parts = [_lanes(randn8x, seed, offset + s, min(CHUNK, numel - s), device, width=8)
             for s in range(0, numel, CHUNK)]
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts) if parts else torch.empty(0, device=device)


def _as_int32(bits: torch.Tensor) -> torch.Tensor:
    return torch.where(bits >= 1 << 31, bits - (1 << 32), bits).to(torch.int32)


def round_stochastic(x: torch.Tensor, bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float32 ``x`` rounded to ``dtype`` (float16/bfloat16) up in magnitude with probability = fractional distance.

    ``bits`` are uniform 16-bit values (int64 tensor). Adding uniform random bits below the kept significand
    and truncating carries into it with probability (dropped bits)/2^k: unbiased, no float arithmetic.
    bfloat16 drops k = 16 bits (its exponent range is float32's). float16 drops 13 bits and takes the top 13
    random bits; below 2^-14, where float16's gap stays 2^-24 (subnormals and below), the magnitude is first
    lifted by 2^-14 into [2^-14, 2^-13), whose gap is also 2^-24, rounded there, and lowered back: both steps
    are exact, and the lift's own float32 rounding (at 2^-37) is below the 13 random bits' resolution. The
    same formula for every value, so the GPU kernel needs no branch.
    """
    xb = x.view(torch.int32).to(torch.int64) & MASK32
    if dtype == torch.bfloat16:
        out = ((xb + bits) >> 16) << 16
    else:
        magnitude = x.abs()
        small = magnitude < 2.0 ** -14
        lifted = torch.where(small, magnitude + 2.0 ** -14, magnitude)  # float32 arithmetic
        lifted = lifted.view(torch.int32).to(torch.int64) & MASK32
        rounded = _as_int32(((lifted + (bits >> 3)) >> 13) << 13).view(torch.float32)
        rounded = torch.where(small, rounded - 2.0 ** -14, rounded)
        out = (rounded.view(torch.int32).to(torch.int64) & MASK32) | (xb & 0x80000000)
    y = _as_int32(out).view(torch.float32)
    return torch.where(torch.isnan(x), x, y).to(dtype)  # the result is representable: the cast is exact


Coefficient = float | torch.Tensor  # a Python number, or a 0-d tensor on dst's device (never read back)
Probe = tuple[torch.Tensor, int, float]  # (out, seed, alpha): also write out ← dst + alpha·u(seed)


def check_axpy(dst: torch.Tensor, src: torch.Tensor, terms: Sequence[tuple[int, Coefficient]], offset: int,
               rounding_seed: int | None, probe: Probe | None = None) -> list[tuple[int, Coefficient]]:
    """Validate the arguments shared by both backends; return the terms, less those with a zero Python
    coefficient (a tensor coefficient is kept: checking it would wait for the GPU)."""
    if dst.dtype != src.dtype or dst.dtype not in DTYPES:
        raise TypeError(f"dst and src must share a dtype among {DTYPES}, got {dst.dtype} and {src.dtype}")
    if dst.dim() != 1 or src.dim() != 1 or not dst.is_contiguous() or not src.is_contiguous():
        raise ValueError("dst and src must be 1-D and contiguous")
    if dst.numel() != src.numel() or dst.device != src.device:
        raise ValueError("dst and src must have the same numel and device")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if probe is not None:
        out = probe[0]
        if out.dtype != dst.dtype or out.shape != dst.shape or out.device != dst.device or not out.is_contiguous():
            raise ValueError("the probe output must be contiguous and match dst's shape, dtype and device")
        if out.data_ptr() in (dst.data_ptr(), src.data_ptr()):
            raise ValueError("the probe output must be a buffer of its own")
    extra = ([] if rounding_seed is None else [rounding_seed]) + ([] if probe is None else [probe[1]])
    for seed in [s for s, _ in terms] + extra:
        if not 0 <= seed < 1 << 64:
            raise ValueError(f"seeds are 64-bit keys in [0, 2^64), got {seed}")
    for _, c in terms:
        if isinstance(c, torch.Tensor) and (c.numel() != 1 or c.device != dst.device):
            raise ValueError("a tensor coefficient must hold one value on dst's device")
    # A zero coefficient adds exactly ±0: dropping it saves a Philox pass and keeps a -0.0 as it is.
    live = [(int(s), c if isinstance(c, torch.Tensor) else float(c)) for s, c in terms
            if isinstance(c, torch.Tensor) or c != 0.0]
    return live


def axpy_directions_(dst: torch.Tensor, src: torch.Tensor, shrink: float, terms: Sequence[tuple[int, Coefficient]],
                     offset: int = 0, rounding_seed: int | None = None, chunk: int = CHUNK,
                     probe: Probe | None = None) -> None:
    """Reference of ``zofw.kernels.axpy_directions_`` (arguments already checked), one chunk at a time.

    float32 ops in the kernel's order, each rounded once (no fused multiply-add, like the kernel):
    acc = shrink·src; acc = acc + (coef_j·u_j) for j = 1, 2, 3; then one rounding to dst.dtype.
    """
    wide = dst.dtype == torch.float64  # float64 buffers (exact-arithmetic tests) keep float64 arithmetic
    shrink = shrink if wide else f32(shrink)
    terms = [(s, float(c) if wide else f32(float(c))) for s, c in terms]
    stochastic = rounding_seed is not None and dst.dtype in (torch.float16, torch.bfloat16)
    for start in range(0, dst.numel(), chunk):
        stop = min(start + chunk, dst.numel())
        acc = src[start:stop].to(torch.float64 if wide else torch.float32) * shrink  # read before dst is written
        for seed, coef in terms:
            acc.add_(normal(seed, offset + start, stop - start, dst.device).to(acc.dtype).mul_(coef))
        if stochastic:
            bits = _lanes(rounding_bits8x, rounding_seed, offset + start, stop - start, dst.device, width=8)
            acc = round_stochastic(acc, bits, dst.dtype)
        dst[start:stop].copy_(acc)  # a float32 → float16/bfloat16 copy rounds to nearest even
        if probe is not None:  # from the stored values, as a second pass would read them
            out, seed, alpha = probe
            alpha = float(alpha) if wide else f32(float(alpha))
            compute = torch.float64 if wide else torch.float32
            perturbed = dst[start:stop].to(compute) * (1.0 if wide else f32(1.0))
            perturbed.add_(normal(seed, offset + start, stop - start, dst.device).to(compute).mul_(alpha))
            out[start:stop].copy_(perturbed)


def normal_at(seed: int, indices: torch.Tensor) -> torch.Tensor:
    """float32 u[indices] of the direction drawn from ``seed``, for any int64 global indices."""
    lanes = torch.stack(randn8x(seed, indices.reshape(-1) // 8), dim=-1)  # (n, 8): all lanes of each counter
    return lanes.gather(-1, (indices.reshape(-1) % 8)[:, None]).reshape(indices.shape)


def gather_rows(table: torch.Tensor, rows: torch.Tensor, width: int, offset: int, seed: int,
                alpha: float) -> torch.Tensor:
    """Reference of ``zofw.kernels.gather_rows``: rows of the (V, width) matrix ``table`` (1-D, row-major,
    global offset ``offset``), each element θ + alpha·u(seed) in float32, rounded once to table.dtype."""
    columns = torch.arange(width, device=table.device)
    flat = rows.to(table.device)[:, None] * width + columns  # (n, width) positions in the table
    values = table[flat].to(torch.float32)
    values = values + normal_at(seed, flat + offset).to(values.device) * f32(float(alpha))
    return values.to(table.dtype)  # one rounding, to nearest even (as the kernel's)


def squared_norm(seed: int, numel: int, device: torch.device | str = "cpu") -> float:
    """Σ_{i < numel} u_i² of the direction drawn from ``seed`` (float64 accumulation over chunks)."""
    return math.fsum(float(normal(seed, s, min(CHUNK, numel - s), device).double().square().sum())
                     for s in range(0, numel, CHUNK))

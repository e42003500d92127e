"""Counter-based Gaussian directions and the fused multi-term update that consumes them.

Element i of the direction drawn from a 64-bit ``seed`` is a pure function of (seed, i): lane ``i % 8``
of the eight normals that one Philox4x32-7 evaluation at counter ``i // 8`` gives (``philox.randn8x``). So how the parameters are split into tensors, fused
into flat buffers or sharded never changes the direction, as long as every buffer is given its global
element offset. ``axpy_directions_`` applies dst ← shrink·src + Σ coef_j·u(seed_j) in one pass (one
Triton launch on CUDA, chunked plain PyTorch elsewhere), rounding once, to nearest or stochastically
with a rounding stream that is also counter-based. ``philox`` documents the bit layout.
"""

from __future__ import annotations

from typing import Sequence

import torch

from zofw.kernels import philox

__all__ = ["normal", "axpy_directions_", "gather_rows", "squared_norm", "elements_passed"]

_passed = [0]  # elements of weights read by axpy_directions_ since import (zofw bench counts passes with it)


def elements_passed() -> int:
    """How many weight elements ``axpy_directions_`` has read so far (a pass over d weights adds d)."""
    return _passed[0]


def _triton_for(device: torch.device | str):
    """The Triton backend module for CUDA devices when Triton is installed, else None."""
    if (device if isinstance(device, torch.device) else torch.device(device)).type != "cuda":
        return None
    from zofw.kernels import triton_axpy  # imported lazily: CPU-only installs have no Triton

    return triton_axpy if triton_axpy.AVAILABLE else None


def normal(seed: int, offset: int, numel: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """float32 u[offset:offset+numel] of the direction drawn from ``seed`` (a 64-bit key in [0, 2^64))."""
    if _triton_for(device) is None:
        return philox.normal(seed, offset, numel, device)
    out = torch.zeros(numel, dtype=torch.float32, device=device)
    axpy_directions_(out, out, 0.0, [(seed, 1.0)], offset)  # 0·0 + 1·u = u exactly
    return out


def axpy_directions_(dst: torch.Tensor, src: torch.Tensor, shrink: float,
                     terms: Sequence[tuple[int, philox.Coefficient]], offset: int = 0,
                     rounding_seed: int | None = None, probe: philox.Probe | None = None,
                     scalars: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """dst ← shrink·src + Σ_j coef_j · u(seed_j)[offset : offset+n], in float32, rounded once to dst.dtype.

    ``dst`` may be ``src`` (in place; no other overlap). Both 1-D, contiguous, same numel, device and dtype
    (float32, float16 or bfloat16). ``terms`` are (seed, coef) pairs (zero Python coefficients are skipped);
    a pass takes up to 3, more take one pass per 3, each rounded once. A coefficient may be a 0-d tensor on dst's device: the kernel reads it there,
    so a coefficient computed on the GPU (the released one) never stalls the host. Seeds are 64-bit keys in
    [0, 2^64). With ``rounding_seed`` and a float16 or bfloat16 ``dst``, rounding is stochastic and unbiased
    (up in magnitude with probability equal to the fractional distance between the two neighbours), driven
    by a counter-based stream of (rounding_seed, global element index), disjoint from every direction
    stream; otherwise to nearest even.

    ``probe = (out, seed, alpha)`` also writes out ← dst + alpha·u(seed) from the values just stored, in
    the same pass: a deferred update and the next probe's perturbed weights cost one read of θ, and the
    result is bitwise what the two passes would give.

    ``scalars``: CUDA only, at most 3 terms: the per-step values are read from device memory instead (see
    ``triton_axpy.axpy_directions_``), so that a CUDA graph can replay the launch.
    """
    live = philox.check_axpy(dst, src, terms, offset, rounding_seed, probe)
    backend = _triton_for(dst.device) if dst.dtype != torch.float64 else None
    if scalars is not None:
        if backend is None or len(live) > philox.MAX_TERMS:
            raise ValueError("scalars from memory need the CUDA kernel and at most 3 terms")
        _passed[0] += src.numel()
        backend.axpy_directions_(dst, src, shrink, live, offset, rounding_seed, probe=probe, scalars=scalars)
        return
    # one pass takes at most MAX_TERMS directions: more (K-direction updates) take ⌈n/3⌉ passes, each
    # rounded once, with rounding streams of their own; the probe rides on the last
    chunks = [live[i:i + philox.MAX_TERMS] for i in range(0, len(live), philox.MAX_TERMS)] or [[]]
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        rounding = rounding_seed if rounding_seed is None or index == 0 else _chunk_rounding_seed(rounding_seed, index)
        _passed[0] += src.numel()
        (backend or philox).axpy_directions_(dst, src if index == 0 else dst, shrink if index == 0 else 1.0, chunk,
                                             offset, rounding, probe=probe if last else None)


def gather_rows(table: torch.Tensor, rows: torch.Tensor, width: int, offset: int, seed: int, alpha: float,
                scalars: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Rows ``rows`` of the perturbed matrix: (n, width) with element (r, j) = θ[rows[r]·width + j] +
    alpha·u(seed)[offset + rows[r]·width + j], in float32, rounded once to table.dtype (to nearest even),
    bitwise what ``axpy_directions_`` writes for the same elements. ``table`` is the matrix as a 1-D
    row-major tensor at global offset ``offset``; ``rows`` an int64 tensor on its device (never read by the
    host). An embedding lookup or a head that scores a few vocabulary columns needs these rows, not the
    whole perturbed matrix. ``scalars``: seed and alpha from device memory (CUDA graphs; see
    ``axpy_directions_``)."""
    if table.dim() != 1 or not table.is_contiguous() or table.numel() % width:
        raise ValueError("table must be a contiguous 1-D view of a (V, width) matrix")
    out = torch.empty(rows.numel(), width, dtype=table.dtype, device=table.device)
    backend = _triton_for(table.device) if table.dtype != torch.float64 else None
    _passed[0] += rows.numel() * width
    if backend is not None and width % 8 == 0:
        backend.gather_rows(out, table, rows.reshape(-1), width, offset, seed, alpha, scalars)
        return out.reshape(*rows.shape, width)
    if scalars is not None:
        raise ValueError("scalars from memory need the CUDA kernel and a width that is a multiple of 8")
    return philox.gather_rows(table, rows.reshape(-1), width, offset, seed, alpha).reshape(*rows.shape, width)


def _chunk_rounding_seed(rounding_seed: int, index: int) -> int:
    """A distinct rounding key for pass ``index`` of a many-term update (SplitMix64 step, stays in [0, 2^64))."""
    return (rounding_seed + index * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)


def squared_norm(seed: int, numel: int, device: torch.device | str = "cpu") -> float:
    """Σ_{i < numel} u_i² of the direction drawn from ``seed`` (for directions normalised to the sphere)."""
    backend = _triton_for(device)
    return (backend or philox).squared_norm(seed, numel, device)

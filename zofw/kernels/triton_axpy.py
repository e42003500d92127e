"""Triton kernels for CUDA tensors: the fused direction axpy and the direction's squared norm.

One launch covers a whole 1-D buffer. A program owns BLOCK consecutive elements = BLOCK/8 Philox
counters: one Philox4x32-7 call per counter gives eight 16-bit uniform pairs, Box-Muller the 8 normals of
8 consecutive elements, interleaved back into element order with join/reshape so that loads and stores
stay contiguous; the stochastic-rounding stream also serves 8 elements per counter. Programs start at
multiples of 8 global elements; HEAD = offset % 8 (a constexpr, so the common HEAD = 0 keeps the loads
provably aligned) shifts elements against lanes. Arithmetic is float32 with fp-fusion off. Under the
interpreter the results match ``zofw.kernels.philox`` up to numpy's log/cos/sin; compiled for a GPU, the
Box-Muller transform uses the approximate PTX lg2/sin/cos (``FAST``), within 1e-3 of the reference (and
nearly always 1e-5; tests/kernels measures both).

Measured on an H100 over 2.65e9 float16 weights drawn N(0, 0.02²) (exp. in docs/benchmarks.md): a copy
takes 3.5 ms; the pass a training step fuses (update along one direction with stochastic rounding, then
the next probe's weights along another) 5.6 ms against its 5.3 ms memory floor (three bytes moved per two
of a copy). With ``probe`` the kernel also writes the next probe's perturbed weights from the values it
just stored (the deferred update of ``zofw.just_in_time``).

This module imports without Triton (``AVAILABLE`` is then False); its kernels are only called on CUDA
tensors, or on CPU tensors under ``TRITON_INTERPRET=1`` (the tests).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from zofw.kernels import philox

try:
    import triton
    import triton.language as tl
    from triton import knobs
except ImportError:  # the CPU install has no Triton: the reference path is used
    triton = None

AVAILABLE = triton is not None
# (elements per program, warps) by number of directions drawn (terms, plus the probe's), measured on an H100
# (fp16, 2.65e9 elements): the fused update + probe pass ran at 5.6 ms with (2048, 4), 5.8 with (1024, 4).
LAUNCH = {0: (4096, 8), 1: (2048, 4), 2: (2048, 4), 3: (1024, 4), 4: (1024, 4)}
_MODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}  # which rounding, with rounding_seed


def _signed64(seed: int) -> int:
    """The 64-bit key as an int64 argument (same bits): keeps the kernel signature fixed at i64."""
    return seed - (1 << 64) if seed >= 1 << 63 else seed


if AVAILABLE:
    # globals a compiled kernel reads must be constexpr objects (the interpreter does not check this)
    DIRECTION_ROUNDS = tl.constexpr(philox.DIRECTION_ROUNDS)

    @triton.jit
    def _in_element_order(n0, n1, n2, n3, n4, n5, n6, n7, OCTS: tl.constexpr):
        """[OCTS] lanes 0..7 → [8·OCTS] as n0[0] n1[0] … n7[0] n0[1] ….

        join stacks along a new minor dimension, so after three joins index (q, j, i, k) holds lane
        4j + 2i + k, which a row-major reshape puts at 8q + 4j + 2i + k."""
        evens = tl.join(tl.join(n0, n4), tl.join(n2, n6))
        odds = tl.join(tl.join(n1, n5), tl.join(n3, n7))
        return tl.reshape(tl.join(evens, odds), [8 * OCTS])

    @triton.jit
    def _approx(x, ASM: tl.constexpr):
        return tl.inline_asm_elementwise(ASM, "=f,f", [x], dtype=tl.float32, is_pure=True, pack=1)

    @triton.jit
    def _box_muller(word, FAST: tl.constexpr):
        """The pair of normals from one uint32 word (see ``philox``); FAST: the same formula with the GPU's
        approximate lg2/sin/cos (PTX ``*.approx.f32``, max abs error about 2^-20 in sin/cos), which keeps
        the pass memory-bound. Interpreted runs (no PTX) take the accurate path."""
        u1 = (word & 0xFFFF).to(tl.float32) * 1.52587890625e-05 + 7.62939453125e-06  # (bits + 1/2)·2^-16
        u2 = (word >> 16).to(tl.float32) * 1.52587890625e-05 + 7.62939453125e-06
        th = 6.283185307179586 * u2
        if FAST:
            r = tl.sqrt(-1.3862943611198906 * _approx(u1, "lg2.approx.f32 $0, $1;"))  # −2·ln u = −2·ln 2·lg2 u
            return r * _approx(th, "cos.approx.f32 $0, $1;"), r * _approx(th, "sin.approx.f32 $0, $1;")
        r = tl.sqrt(-2.0 * tl.log(u1))
        return r * tl.cos(th), r * tl.sin(th)

    @triton.jit
    def _philox7(seed, counters, WORD2: tl.constexpr):
        lo = counters.to(tl.uint32)
        hi = (counters >> 32).to(tl.uint32)
        zero = lo * 0
        return tl.philox(seed, lo, hi, zero + WORD2, zero, DIRECTION_ROUNDS)

    @triton.jit
    def _direction(seed, counters, OCTS: tl.constexpr, FAST: tl.constexpr):
        w0, w1, w2, w3 = _philox7(seed, counters, 0)
        n0, n1 = _box_muller(w0, FAST)
        n2, n3 = _box_muller(w1, FAST)
        n4, n5 = _box_muller(w2, FAST)
        n6, n7 = _box_muller(w3, FAST)
        return _in_element_order(n0, n1, n2, n3, n4, n5, n6, n7, OCTS)

    @triton.jit
    def _rounding_bits(seed, counters, OCTS: tl.constexpr):
        """16 bits for each of 8·OCTS elements from Philox-7 at (counter, 1) (see ``philox``): element
        8c + 4h + w is half h of word w."""
        w0, w1, w2, w3 = _philox7(seed, counters, 1)  # c2 = 1: disjoint from directions
        return _in_element_order(w0 & 0xFFFF, w1 & 0xFFFF, w2 & 0xFFFF, w3 & 0xFFFF,
                                 w0 >> 16, w1 >> 16, w2 >> 16, w3 >> 16, OCTS)

    @triton.jit
    def _round_stochastic(x, r, MODE: tl.constexpr):
        """Same bits as ``philox.round_stochastic`` (MODE 1: float16, 2: bfloat16); r: 16 random bits.

        float16 is branch-free: below 2^-14 (float16's subnormals, where the gap stops shrinking) the
        magnitude is lifted by 2^-14 into the binade whose float16 gap is the same 2^-24, rounded there like
        a normal value, and lowered back (both exact). Weights drawn N(0, 0.02²) put a value below 2^-14
        in almost every block, so a per-block branch (the previous kernel) ran the slow path nearly always:
        it doubled the cost of an update pass."""
        xb = x.to(tl.uint32, bitcast=True)
        if MODE == 2:
            out = ((xb + r) >> 16) << 16
        else:
            magnitude = tl.abs(x)
            small = magnitude < 6.103515625e-05  # 2^-14
            lifted = tl.where(small, magnitude + 6.103515625e-05, magnitude).to(tl.uint32, bitcast=True)
            rounded = (((lifted + (r >> 3)) >> 13) << 13).to(tl.float32, bitcast=True)
            rounded = tl.where(small, rounded - 6.103515625e-05, rounded)
            out = rounded.to(tl.uint32, bitcast=True) | (xb & 0x80000000)
        return tl.where(x != x, x, out.to(tl.float32, bitcast=True))

    @triton.jit
    def _round_nearest_bf16(x):
        """float32 → nearest-even bfloat16 value, still in float32, by bit arithmetic.

        The GPU's cvt.rn would do, but the interpreter's float32 → bfloat16 cast truncates; this is
        exact on both, so the tests can compare bit for bit.
        """
        xb = x.to(tl.uint32, bitcast=True)
        out = ((xb + 0x7FFF + ((xb >> 16) & 1)) >> 16) << 16
        return tl.where(x != x, x, out.to(tl.float32, bitcast=True))

    @triton.jit(do_not_specialize=["seed1", "seed2", "seed3", "rounding_seed", "probe_seed"])
    def _axpy_kernel(src_ptr, dst_ptr, n: tl.int64, first_counter: tl.int64, shrink: tl.float32,
                     seed1: tl.int64, coef1: tl.float32, seed2: tl.int64, coef2: tl.float32,
                     seed3: tl.int64, coef3: tl.float32, rounding_seed: tl.int64, coef_ptr, seeds_ptr,
                     probe_ptr, probe_seed: tl.int64, probe_coef: tl.float32,
                     N_TERMS: tl.constexpr, HEAD: tl.constexpr, MODE: tl.constexpr, BLOCK: tl.constexpr,
                     FAST: tl.constexpr, COEFS_IN_MEMORY: tl.constexpr, PROBE: tl.constexpr,
                     SCALARS_IN_MEMORY: tl.constexpr):
        OCTS: tl.constexpr = BLOCK // 8
        if COEFS_IN_MEMORY or SCALARS_IN_MEMORY:  # computed on the GPU (a released coefficient): read here
            coef1 = tl.load(coef_ptr)
            coef2 = tl.load(coef_ptr + 1)
            coef3 = tl.load(coef_ptr + 2)
        if SCALARS_IN_MEMORY:  # a CUDA graph replays this launch: every per-step value comes from memory
            shrink = tl.load(coef_ptr + 3)
            probe_coef = tl.load(coef_ptr + 4)
            seed1 = tl.load(seeds_ptr)
            seed2 = tl.load(seeds_ptr + 1)
            seed3 = tl.load(seeds_ptr + 2)
            rounding_seed = tl.load(seeds_ptr + 3)
            probe_seed = tl.load(seeds_ptr + 4)
        pid = tl.program_id(0).to(tl.int64)  # int64: buffers beyond 2^31 elements
        counters = first_counter + pid * OCTS + tl.arange(0, OCTS)  # directions and rounding bits alike
        idx = pid * BLOCK + tl.arange(0, BLOCK) - HEAD
        if HEAD == 0:
            mask = idx < n
        else:
            mask = (idx >= 0) & (idx < n)
        acc = tl.load(src_ptr + idx, mask=mask, other=0.0).to(tl.float32) * shrink
        if N_TERMS >= 1:
            acc = acc + coef1 * _direction(seed1, counters, OCTS, FAST)
        if N_TERMS >= 2:
            acc = acc + coef2 * _direction(seed2, counters, OCTS, FAST)
        if N_TERMS >= 3:
            acc = acc + coef3 * _direction(seed3, counters, OCTS, FAST)
        if MODE != 0:
            acc = _round_stochastic(acc, _rounding_bits(rounding_seed, counters, OCTS), MODE)
        elif dst_ptr.dtype.element_ty == tl.bfloat16:
            acc = _round_nearest_bf16(acc)
        stored = acc.to(dst_ptr.dtype.element_ty)  # exact after the rounding
        tl.store(dst_ptr + idx, stored, mask=mask)
        if PROBE:  # the next probe's weights from the values just stored: as a separate pass would form them
            probe = stored.to(tl.float32) + probe_coef * _direction(probe_seed, counters, OCTS, FAST)
            if probe_ptr.dtype.element_ty == tl.bfloat16:
                probe = _round_nearest_bf16(probe)
            tl.store(probe_ptr + idx, probe.to(probe_ptr.dtype.element_ty), mask=mask)

    @triton.jit(do_not_specialize=["seed"])
    def _gather_kernel(table_ptr, rows_ptr, out_ptr, width: tl.int64, first: tl.int64, seed: tl.int64,
                       alpha: tl.float32, seeds_ptr, values_ptr, HEAD: tl.constexpr, BLOCK: tl.constexpr,
                       FAST: tl.constexpr, SCALARS_IN_MEMORY: tl.constexpr):
        """out[r, :] = θ[rows[r], :] + alpha·u over that row's global indices, rounded once. A row starts at
        global index first + rows[r]·width, which is ≡ HEAD mod 8 for every row (width is a multiple of 8):
        program (r, p) covers the row's elements [p·BLOCK − HEAD, (p + 1)·BLOCK − HEAD) in whole counters."""
        OCTS: tl.constexpr = BLOCK // 8
        if SCALARS_IN_MEMORY:  # a CUDA graph replays this launch (see _axpy_kernel)
            seed = tl.load(seeds_ptr)
            alpha = tl.load(values_ptr)
        r = tl.program_id(0).to(tl.int64)
        p = tl.program_id(1).to(tl.int64)
        row = tl.load(rows_ptr + r).to(tl.int64)
        start = row * width  # in the table
        column = p * BLOCK + tl.arange(0, BLOCK) - HEAD
        mask = (column >= 0) & (column < width)
        counters = (first + start - HEAD) // 8 + p * OCTS + tl.arange(0, OCTS)
        value = tl.load(table_ptr + start + column, mask=mask, other=0.0).to(tl.float32)
        value = value + alpha * _direction(seed, counters, OCTS, FAST)
        if out_ptr.dtype.element_ty == tl.bfloat16:
            value = _round_nearest_bf16(value)
        tl.store(out_ptr + r * width + column, value.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit(do_not_specialize=["seed"])
    def _squares_kernel(partial_ptr, n: tl.int64, seed: tl.int64, BLOCK: tl.constexpr, FAST: tl.constexpr):
        OCTS: tl.constexpr = BLOCK // 8
        pid = tl.program_id(0).to(tl.int64)
        u = _direction(seed, pid * OCTS + tl.arange(0, OCTS), OCTS, FAST)
        idx = pid * BLOCK + tl.arange(0, BLOCK)
        tl.store(partial_ptr + pid, tl.sum(tl.where(idx < n, u * u, 0.0), axis=0))


def _fast(tensor: torch.Tensor) -> bool:
    """Approximate transcendentals on real GPUs; the interpreter (CPU tensors) cannot run PTX."""
    return tensor.device.type == "cuda"


_LAUNCHED: dict[tuple, Any] = {}  # launch key → compiled kernel (see axpy_directions_)
_DIRECT = True  # tests turn the direct launch off to compare it with Triton's own
_last_coefficients: list = [(), None]  # (the coefficient objects, their float32 [3] buffer on the device)


def _coefficients_on(device: torch.device, coefficients: list) -> torch.Tensor:
    """float32 [3] on ``device`` without a host round trip (fill kernels for the Python numbers).

    A deferred update hands the same coefficient tensors to every block's pass: the buffer built for them
    is reused while they are the very same objects (released values are never modified in place)."""
    cached, buffer = _last_coefficients
    if buffer is not None and len(cached) == len(coefficients) and all(a is b for a, b in zip(cached, coefficients)):
        return buffer
    values = [c.reshape(()).to(torch.float32) if isinstance(c, torch.Tensor)
              else torch.full((), float(c), dtype=torch.float32, device=device) for c in coefficients]
    values += [torch.zeros((), dtype=torch.float32, device=device)] * (3 - len(values))
    buffer = torch.stack(values)
    _last_coefficients[:] = [tuple(coefficients), buffer]
    return buffer


def axpy_directions_(dst: torch.Tensor, src: torch.Tensor, shrink: float, terms: Sequence[tuple[int, float | torch.Tensor]],
                     offset: int = 0, rounding_seed: int | None = None, block: int | None = None,
                     warps: int | None = None, probe: tuple[torch.Tensor, int, float] | None = None,
                     scalars: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """The fused kernel (arguments already checked by ``philox.check_axpy``; at most 3 terms).

    ``scalars = (seeds, values)``: the kernel reads seed_1..3, the rounding seed and the probe's seed from
    the int64 ``seeds`` [5], and coef_1..3, shrink and the probe's alpha from the float32 ``values`` [5],
    on the device, instead of from its arguments (whose values are then ignored, their number and kind
    still decide the kernel): a CUDA graph captures the launch once and replays it with new values."""
    n = dst.numel()
    if n == 0:
        return
    default_block, num_warps = LAUNCH[len(terms) + (probe is not None)]
    block, num_warps = block or default_block, warps or num_warps
    mode = _MODES[dst.dtype] if rounding_seed is not None else 0
    in_memory = scalars is None and any(isinstance(c, torch.Tensor) for _, c in terms)
    coef_buffer = _coefficients_on(dst.device, [c for _, c in terms]) if in_memory else dst
    seeds_buffer = dst
    if scalars is not None:
        seeds_buffer, coef_buffer = scalars
        terms = [(0, 0.0)] * len(terms)
    padded = [(_signed64(s), 0.0 if in_memory else float(c)) for s, c in terms] + [(0, 0.0)] * (3 - len(terms))
    head = offset % 8  # programs start at multiples of 8 elements: rounding counters cover 8
    grid = (triton.cdiv(head + n, block),)
    probe_out = probe[0] if probe else dst
    args = (src, dst, n, offset // 8, float(shrink),
            padded[0][0], padded[0][1], padded[1][0], padded[1][1], padded[2][0], padded[2][1],
            _signed64(rounding_seed or 0), coef_buffer, seeds_buffer,
            probe_out, _signed64(probe[1]) if probe else 0, float(probe[2]) if probe else 0.0)
    constexprs = (len(terms), head, mode, block, _fast(dst), in_memory, probe is not None, scalars is not None)
    # Triton specialises a kernel on its pointer and integer arguments (alignment, divisibility), never on
    # the seeds (do_not_specialize) or floats: a launch whose buffers, sizes and offsets equal an earlier
    # one's runs that kernel directly, skipping Triton's argument binding (a third of a just-in-time
    # block's host time: a training step launches the same ~60 passes, step after step)
    key = (grid, num_warps, constexprs, src.data_ptr(), dst.data_ptr(), dst.dtype, n, offset // 8,
           coef_buffer.data_ptr(), coef_buffer.dtype, seeds_buffer.data_ptr(), probe_out.data_ptr())
    kernel = _LAUNCHED.get(key)
    if kernel is not None:
        stream = torch.cuda.current_stream(dst.device).cuda_stream
        kernel.run(grid[0], 1, 1, stream, kernel.function, kernel.packed_metadata,
                   kernel.launch_metadata(grid, stream, *args, *constexprs),
                   knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook, *args, *constexprs)
        return
    kernel = _axpy_kernel[grid](*args, N_TERMS=constexprs[0], HEAD=head, MODE=mode, BLOCK=block, FAST=constexprs[4],
                                COEFS_IN_MEMORY=in_memory, PROBE=probe is not None,
                                SCALARS_IN_MEMORY=scalars is not None, num_warps=num_warps, enable_fp_fusion=False)
    if _DIRECT and dst.device.type == "cuda" and all(hasattr(kernel, a) for a in ("run", "function", "packed_metadata")):
        if len(_LAUNCHED) >= 4096:  # buffers that come and go (fresh scratch): forget the oldest
            _LAUNCHED.pop(next(iter(_LAUNCHED)))
        _LAUNCHED[key] = kernel


def gather_rows(out: torch.Tensor, table: torch.Tensor, rows: torch.Tensor, width: int, offset: int, seed: int,
                alpha: float, scalars: tuple[torch.Tensor, torch.Tensor] | None = None, block: int = 1024) -> None:
    """The gather kernel (``zofw.kernels.gather_rows``; width a multiple of 8)."""
    head = offset % 8
    grid = (rows.numel(), triton.cdiv(head + width, block))
    seeds_buffer, values_buffer = scalars if scalars is not None else (out, out)
    _gather_kernel[grid](table, rows, out, width, offset, _signed64(seed), float(alpha), seeds_buffer, values_buffer,
                         HEAD=head, BLOCK=block, FAST=_fast(out), SCALARS_IN_MEMORY=scalars is not None,
                         num_warps=4, enable_fp_fusion=False)


def squared_norm(seed: int, numel: int, device: torch.device | str, block: int = 2048) -> float:
    """Σ u_i² over [0, numel): per-program float32 partial sums, added in float64 (deterministic)."""
    if numel == 0:
        return 0.0
    programs = triton.cdiv(numel, block)
    partial = torch.empty(programs, dtype=torch.float32, device=device)
    _squares_kernel[(programs,)](partial, numel, _signed64(seed), BLOCK=block, FAST=_fast(partial), num_warps=4)
    return float(partial.double().sum())

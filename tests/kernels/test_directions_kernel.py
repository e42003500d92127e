"""zofw.kernels: the Philox reference, the Triton kernel (interpreted on CPU, compiled on CUDA), layout
independence, statistics and stochastic rounding.

The Triton checks run this file as a script in a subprocess with TRITON_INTERPRET=1 (the variable must be
set before Triton is imported, and must not leak into the rest of the test session); they skip when Triton
is not installed, as in CI.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zofw import kernels
from zofw.kernels import philox

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

REPO = Path(__file__).resolve().parents[2]
SEEDS = [0, 1, 12345, 2**32 + 7, 2**63 + 5, 2**64 - 1]
RAW_COUNTERS = torch.tensor([0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40 + 3, 2**62]
                            + list(range(100, 602)))  # 512 counters: edge cases, then a run
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TERMS = [(5, 0.5), (2**64 - 3, -1.25), (2**40, 2.0)]
# (dtype, number of terms, global offset, rounding seed, in place, shrink); n = 1001 over blocks of 256.
# Offsets: aligned, unaligned, and past 2^34 (counters using their high word); no terms: the rounding alone.
AXPY_CASES = [(d, k, off, rs, inplace, 0.9) for d in DTYPES
              for k, off, rs, inplace in ((1, 0, None, False), (3, 2**34 + 1, None, False), (3, 3, 7, True),
                                          (2, 2**34 + 2, 2**64 - 1, True))] + \
             [(d, 0, 1, rs, False, 0.75) for d in DTYPES for rs in (None, 2**63 + 9)]
N_AXPY = 1001


def axpy_src(case_index: int, dtype: torch.dtype, n: int = N_AXPY) -> torch.Tensor:
    generator = torch.Generator().manual_seed(case_index)
    return (torch.randn(n, generator=generator) * 3).to(dtype)


def small_values(n: int = 4096) -> torch.Tensor:
    """float16 values across its subnormal range and below 2^-24, both signs, zeros, and one normal block."""
    magnitudes = torch.logspace(-30, -10, n, base=2.0)
    signs = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
    values = (magnitudes * signs).to(torch.float16)
    values[::97] = 0.0
    return torch.cat([values, torch.randn(1024, generator=torch.Generator().manual_seed(3)).to(torch.float16)])


def fused_and_separate(axpy, dtype: torch.dtype, **launch) -> tuple[torch.Tensor, ...]:
    """A stochastically rounded update with the next probe's weights in the same pass, and the same as two
    passes (update in place, then θ + αu into a scratch buffer)."""
    src = axpy_src(7, dtype, 3001)
    fused, fused_probe = src.clone(), torch.empty_like(src)
    axpy(fused, fused, 0.999, TERMS[:2], 2**33 + 3, 11, probe=(fused_probe, 2**64 - 5, 1e-3), **launch)
    separate, separate_probe = src.clone(), torch.empty_like(src)
    axpy(separate, separate, 0.999, TERMS[:2], 2**33 + 3, 11, **launch)
    axpy(separate_probe, separate, 1.0, [(2**64 - 5, 1e-3)], 2**33 + 3, **launch)
    return fused, fused_probe, separate, separate_probe


def reference_axpy(src: torch.Tensor, shrink: float, terms, offset: int, rounding_seed) -> torch.Tensor:
    dst = torch.empty_like(src)
    philox.axpy_directions_(dst, src, shrink, terms, offset, rounding_seed)
    return dst


def ulps_apart(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance in units in the last place between same-signed float16/bfloat16 values."""
    return (a.view(torch.int16).to(torch.int32) - b.view(torch.int16).to(torch.int32)).abs()


def assert_close_rounded(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal up to another backend's float32 log/sqrt/cos/sin: a few 1e-7·|coef·u| in float32, so in
    float16/bfloat16 one rounding step apart where that noise straddled a rounding boundary (rarely)."""
    step = {torch.float32: 1e-6, torch.float16: 2**-10, torch.bfloat16: 2**-7}[got.dtype]
    torch.testing.assert_close(got.float(), want.float(), rtol=step, atol=2e-5)
    if got.dtype != torch.float32:
        assert int((got != want).sum()) <= max(3, got.numel() // 200)


# ------------------------------------------------------------------------------------- reference Philox


def test_philox_known_answers() -> None:
    """Random123's Philox4x32-10 known-answer vectors (key k0 = low half of the seed)."""
    cases = [((0, 0), (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0xA4093822, 0x299F31D0), (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for (k0, k1), counter, expected in cases:
        out = philox.philox4x32(k0 | k1 << 32, *[torch.tensor([c]) for c in counter])
        assert tuple(int(o) for o in out) == expected


def test_seed_uses_all_64_bits_and_counter_high_word() -> None:
    assert not torch.equal(philox.normal(2**63 + 5, 0, 64), philox.normal(5, 0, 64))
    assert not torch.equal(philox.normal(2**32 + 5, 0, 64), philox.normal(5, 0, 64))
    assert not torch.equal(philox.normal(5, 2**34, 64), philox.normal(5, 0, 64))  # counter 2^32 ≠ counter 0


# ------------------------------------------------------------------------ Triton, under the interpreter


def _interpret(out_path: str) -> None:
    """Subprocess body (TRITON_INTERPRET=1): run the Triton code on CPU tensors and save what it gives."""
    import triton
    import triton.language as tl

    from zofw.kernels import triton_axpy

    globals()["kernel_direction"] = triton_axpy._direction  # a jit function resolves names in module globals

    @triton.jit
    def raw_kernel(seed, counters_ptr, ints_ptr, normals_ptr, N: tl.constexpr, ROUNDS: tl.constexpr):
        counters = tl.load(counters_ptr + tl.arange(0, N))
        lanes = tl.randint4x(seed, counters, ROUNDS)
        for lane in tl.static_range(4):
            tl.store(ints_ptr + lane * N + tl.arange(0, N), lanes[lane].to(tl.int64) & 0xFFFFFFFF)
        # the kernel's own direction, in element order: element 8c + m is lane m of counter c
        tl.store(normals_ptr + tl.arange(0, 8 * N), kernel_direction(seed, counters, N, False))  # noqa: F821

    results: dict = {"ints": [], "normals": [], "axpy": []}
    for seed in SEEDS:
        ints, normals = torch.zeros(4, 512, dtype=torch.int64), torch.zeros(512, 8)
        raw_kernel[(1,)](triton_axpy._signed64(seed), RAW_COUNTERS, ints, normals, N=512, ROUNDS=philox.DIRECTION_ROUNDS)
        results["ints"].append(ints)
        results["normals"].append(normals)
    for index, (dtype_name, k, offset, rounding_seed, inplace, shrink) in enumerate(AXPY_CASES):
        src = axpy_src(index, DTYPES[dtype_name])
        dst = src if inplace else torch.empty_like(src)
        triton_axpy.axpy_directions_(dst, src, shrink, TERMS[:k], offset, rounding_seed, block=256)
        results["axpy"].append(dst)
    # The same fp16 update on a whole buffer and on two slices at their global offsets.
    src = axpy_src(0, torch.float16, 2000)
    whole, parts = torch.empty_like(src), torch.empty_like(src)
    triton_axpy.axpy_directions_(whole, src, 0.5, TERMS, 10, 3, block=256)
    triton_axpy.axpy_directions_(parts[:777], src[:777], 0.5, TERMS, 10, 3, block=256)
    triton_axpy.axpy_directions_(parts[777:], src[777:], 0.5, TERMS, 10 + 777, 3, block=256)
    results["split"] = (whole, parts)
    # Coefficients read by the kernel from memory (a released value that never visits the host).
    in_memory = torch.empty_like(src)
    triton_axpy.axpy_directions_(in_memory, src, 0.5, [(s, torch.tensor(c, dtype=torch.float64)) for s, c in TERMS],
                                 10, 3, block=256)
    results["coefficients_in_memory"] = (whole, in_memory)
    # Every per-step value from device memory (a CUDA graph's replay), the arguments' values ignored.
    fused, fused_probe = src.clone(), torch.empty_like(src)
    triton_axpy.axpy_directions_(fused, fused, 0.5, TERMS[:2], 10, 3, block=256, probe=(fused_probe, 2**64 - 5, 1e-3))
    scalars = (torch.tensor([triton_axpy._signed64(s) for s in (TERMS[0][0], TERMS[1][0], 0, 3, 2**64 - 5)]),
               torch.tensor([TERMS[0][1], TERMS[1][1], 0.0, 0.5, 1e-3], dtype=torch.float32))
    replayed, replayed_probe = src.clone(), torch.empty_like(src)
    triton_axpy.axpy_directions_(replayed, replayed, 9.0, [(1, 7.0), (2, 8.0)], 10, 99, block=256,
                                 probe=(replayed_probe, 4, 5.0), scalars=scalars)
    results["scalars_in_memory"] = (fused, fused_probe, replayed, replayed_probe)
    # Rows of a perturbed (V, 24) matrix at global offset 13 (rows start at ≡ 5 mod 8), in two dtypes.
    for dtype_name in ("float16", "bfloat16"):
        table = axpy_src(11, DTYPES[dtype_name], 40 * 24)
        rows = torch.tensor([3, 0, 39, 3, 17])
        out = torch.empty(5, 24, dtype=table.dtype)
        triton_axpy.gather_rows(out, table, rows, 24, 13, 2**63 + 5, 1e-3, block=16)
        results[f"gather_{dtype_name}"] = (table, rows, out)
    for dtype_name, dtype in DTYPES.items():
        results[f"fused_probe_{dtype_name}"] = fused_and_separate(triton_axpy.axpy_directions_, dtype, block=256)
    small = small_values()
    rounded = torch.empty_like(small)
    triton_axpy.axpy_directions_(rounded, small, 0.7, [], 5, 2**40 + 1, block=256)
    results["small"] = rounded
    results["squared_norm"] = triton_axpy.squared_norm(11, 5000, "cpu", block=256)
    torch.save(results, out_path)


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory) -> dict:
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    out = tmp_path_factory.mktemp("triton-interpret") / "results.pt"
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    return torch.load(out)


@needs_triton
def test_philox_matches_triton(interpreted) -> None:
    """uint32 outputs bit for bit (Triton's own Philox); the kernel's normals up to numpy's vs torch's
    float32 log/cos/sin (about 1 ulp)."""
    for seed, ints, normals in zip(SEEDS, interpreted["ints"], interpreted["normals"]):
        assert torch.equal(torch.stack(philox.randint4x(seed, RAW_COUNTERS)), ints), seed
        torch.testing.assert_close(torch.stack(philox.randn8x(seed, RAW_COUNTERS), dim=1), normals, rtol=0, atol=1e-5)


@needs_triton
@pytest.mark.parametrize("index", range(len(AXPY_CASES)))
def test_axpy_kernel_matches_reference(interpreted, index: int) -> None:
    dtype_name, k, offset, rounding_seed, _, shrink = AXPY_CASES[index]
    want = reference_axpy(axpy_src(index, DTYPES[dtype_name]), shrink, TERMS[:k], offset, rounding_seed)
    got = interpreted["axpy"][index]
    if k == 0:  # no transcendental functions involved: the rounding must agree bit for bit
        assert torch.equal(got.view(torch.uint8), want.view(torch.uint8))
    else:
        assert_close_rounded(got, want)


@needs_triton
def test_stochastic_rounding_of_subnormal_and_tiny_values_matches_bit_for_bit(interpreted) -> None:
    want = reference_axpy(small_values(), 0.7, [], 5, 2**40 + 1)
    assert torch.equal(interpreted["small"].view(torch.int16), want.view(torch.int16))
    assert (want != 0).any() and (want.abs() < 2**-14).any()


@pytest.mark.parametrize("dtype", DTYPES.values())
def test_an_update_fused_with_the_next_probe_equals_two_passes(dtype) -> None:
    fused, fused_probe, separate, separate_probe = fused_and_separate(kernels.axpy_directions_, dtype)
    assert torch.equal(fused.view(torch.uint8), separate.view(torch.uint8))
    assert torch.equal(fused_probe.view(torch.uint8), separate_probe.view(torch.uint8))
    assert not torch.equal(fused_probe, fused)


@needs_triton
@pytest.mark.parametrize("dtype_name", DTYPES)
def test_triton_update_fused_with_the_next_probe_equals_two_passes(interpreted, dtype_name) -> None:
    fused, fused_probe, separate, separate_probe = interpreted[f"fused_probe_{dtype_name}"]
    assert torch.equal(fused.view(torch.uint8), separate.view(torch.uint8))
    assert torch.equal(fused_probe.view(torch.uint8), separate_probe.view(torch.uint8))


@needs_triton
def test_coefficients_in_device_memory_give_the_same_bits(interpreted) -> None:
    from_arguments, from_memory = interpreted["coefficients_in_memory"]
    assert torch.equal(from_arguments.view(torch.int16), from_memory.view(torch.int16))


@needs_triton
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_triton_gathered_rows_are_the_rows_of_the_perturbed_matrix(interpreted, dtype_name) -> None:
    table, rows, out = interpreted[f"gather_{dtype_name}"]
    assert_close_rounded(out, philox.gather_rows(table, rows, 24, 13, 2**63 + 5, 1e-3))


@pytest.mark.parametrize("dtype", DTYPES.values())
def test_gathered_rows_are_bitwise_the_rows_of_the_perturbed_matrix(dtype) -> None:
    """An embedding lookup of the perturbed matrix without forming it: the same bits for the same rows."""
    table, rows = axpy_src(12, dtype, 50 * 16), torch.tensor([[3, 0], [49, 3], [7, 7]])
    full = torch.empty_like(table)
    kernels.axpy_directions_(full, table, 1.0, [(2**63 + 5, 1e-3)], 13)
    got = kernels.gather_rows(table, rows, 16, 13, 2**63 + 5, 1e-3)
    assert got.shape == (3, 2, 16)
    assert torch.equal(got.view(torch.uint8), full.view(50, 16)[rows].view(torch.uint8))


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES.values())
def test_cuda_gathered_rows_are_bitwise_the_rows_of_the_perturbed_matrix(dtype) -> None:
    table, rows = axpy_src(12, dtype, 5000 * 64).cuda(), torch.tensor([3, 0, 4999, 3, 77]).cuda()
    full = torch.empty_like(table)
    kernels.axpy_directions_(full, table, 1.0, [(2**63 + 5, 1e-3)], 2**33 + 5)
    got = kernels.gather_rows(table, rows, 64, 2**33 + 5, 2**63 + 5, 1e-3)
    assert torch.equal(got.view(torch.uint8), full.view(5000, 64)[rows].view(torch.uint8))


@needs_triton
def test_scalars_in_device_memory_give_the_same_bits(interpreted) -> None:
    fused, fused_probe, replayed, replayed_probe = interpreted["scalars_in_memory"]
    assert torch.equal(fused.view(torch.int16), replayed.view(torch.int16))
    assert torch.equal(fused_probe.view(torch.int16), replayed_probe.view(torch.int16))


def test_a_tensor_coefficient_must_live_on_the_destination_device() -> None:
    x = torch.zeros(8)
    with pytest.raises(ValueError):
        kernels.axpy_directions_(x, x, 1.0, [(1, torch.tensor([1.0, 2.0]))])
    kernels.axpy_directions_(x, x, 1.0, [(1, torch.tensor(0.5))])
    assert torch.equal(x, kernels.normal(1, 0, 8) * 0.5)


@needs_triton
def test_kernel_layout_independent_and_squared_norm(interpreted) -> None:
    whole, parts = interpreted["split"]
    assert torch.equal(whole.view(torch.int16), parts.view(torch.int16))
    assert interpreted["squared_norm"] == pytest.approx(philox.squared_norm(11, 5000), rel=1e-5)


# ------------------------------------------------------------------------------- layout independence


@pytest.mark.parametrize("k", [1, 7, 4093])
def test_normal_split_anywhere(k: int) -> None:
    n = 10_003
    whole = kernels.normal(99, 5, n)
    assert torch.equal(whole, torch.cat([kernels.normal(99, 5, k), kernels.normal(99, 5 + k, n - k)]))


@pytest.mark.parametrize("dtype", DTYPES.values())
def test_axpy_slices_with_global_offsets(dtype: torch.dtype) -> None:
    src = axpy_src(1, dtype, 5000)
    whole, parts = src.clone(), src.clone()
    kernels.axpy_directions_(whole, whole, 0.99, TERMS, 123, rounding_seed=77)
    for start, stop in ((0, 1001), (1001, 3333), (3333, 5000)):
        kernels.axpy_directions_(parts[start:stop], parts[start:stop], 0.99, TERMS, 123 + start, rounding_seed=77)
    assert torch.equal(whole.view(torch.uint8), parts.view(torch.uint8))
    chunked = torch.empty_like(src)  # the reference's chunk size is not part of the semantics
    philox.axpy_directions_(chunked, src, 0.99, TERMS, 123, 77, chunk=999)
    assert torch.equal(whole.view(torch.uint8), chunked.view(torch.uint8))


def test_axpy_is_the_sum_of_its_terms() -> None:
    src, dst = axpy_src(2, torch.float32, 1000), torch.empty(1000)
    kernels.axpy_directions_(dst, src, 0.5, TERMS, 42)
    torch.testing.assert_close(dst, src * 0.5 + sum(kernels.normal(s, 42, 1000) * c for s, c in TERMS))


# -------------------------------------------------------------------------------------------- statistics


def test_normal_statistics() -> None:
    n = 1_000_000
    u, v = kernels.normal(2024, 0, n).double(), kernels.normal(2025, 0, n).double()
    bound = 5 / math.sqrt(n)  # five standard errors
    assert abs(u.mean()) < bound
    assert abs(u.std() - 1) < 5 / math.sqrt(2 * n)
    assert abs((u * v).mean()) < bound  # different seeds: uncorrelated
    assert abs((u.square() * v.square()).mean() - 1) < 5 * math.sqrt(8 / n)  # …and not only linearly
    lanes = u.view(-1, 8)
    for a in range(8):
        assert abs(lanes[:, a].mean()) < 3 * bound and abs(lanes[:, a].std() - 1) < 3 * bound
        for b in range(a + 1, 8):  # the Box-Muller pairs (0, 1), …, (6, 7) and across pairs
            assert abs((lanes[:, a] * lanes[:, b]).mean()) < 3 * bound
            assert abs((lanes[:, a].square() * lanes[:, b].square()).mean() - 1) < 15 * math.sqrt(8 / n)
    assert abs((lanes[1:, 0] * lanes[:-1, 7]).mean()) < 3 * bound  # neighbouring counters
    assert abs((u.abs() > 3).double().mean() - 0.0026998) < 5 * math.sqrt(0.0027 / n)  # the tails
    assert abs((u.abs() > 4).double().mean() - 6.334e-5) < 5 * math.sqrt(6.3e-5 / n)
    assert float(u.abs().max()) <= math.sqrt(2 * 17 * math.log(2)) + 1e-5  # 16-bit uniforms: bounded support


def test_squared_norm_is_the_sum_of_squares() -> None:
    n = 12_345
    assert kernels.squared_norm(3, n) == pytest.approx(float(kernels.normal(3, 0, n).double().square().sum()))
    assert abs(kernels.squared_norm(3, n) - n) < 5 * math.sqrt(2 * n)


# ------------------------------------------------------------------------------------------------ rounding


@pytest.mark.parametrize("dtype,value,gap", [
    (torch.bfloat16, 1 + 77 / 256 * 2**-7, 2**-7),
    (torch.bfloat16, -(2**-130) * 1.3, 2**-133),  # bfloat16 subnormal
    (torch.float16, 1000.3, 0.5),
    (torch.float16, -3.3 * 2**-24, 2**-24),  # float16 subnormal
    (torch.float16, 0.3 * 2**-24, 2**-24),  # below the smallest float16 subnormal
])
def test_stochastic_rounding_is_unbiased(dtype: torch.dtype, value: float, gap: float) -> None:
    value, n, repeats = philox.f32(value), 40_000, 5
    ones, dst = torch.ones(n, dtype=dtype), torch.empty(n, dtype=dtype)
    total = 0.0
    for rounding_seed in range(repeats):  # acc = value·1 exactly, then rounded
        kernels.axpy_directions_(dst, ones, value, [], offset=rounding_seed * n, rounding_seed=rounding_seed)
        out = dst.double()
        lo = math.floor(value / gap) * gap
        assert set(out.unique().tolist()) <= {lo, lo + gap}
        total += float(out.sum())
    p = (value - lo) / gap
    sd = gap * math.sqrt(p * (1 - p) / (n * repeats))
    assert abs(total / (n * repeats) - value) < 5 * sd


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rounding_is_exact_on_representable_values(dtype: torch.dtype) -> None:
    src = axpy_src(3, dtype, 4000)
    src[:4] = torch.tensor([0.0, -0.0, float("inf"), float("-inf")])
    for rounding_seed in (None, 5):
        for terms in ([], [(9, 0.0)]):
            dst = torch.empty_like(src)
            kernels.axpy_directions_(dst, src, 1.0, terms, rounding_seed=rounding_seed)
            assert torch.equal(dst.view(torch.int16), src.view(torch.int16))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_stochastic_rounding_picks_a_neighbour(dtype: torch.dtype) -> None:
    src = axpy_src(4, dtype, 20_000)
    nearest, stochastic = torch.empty_like(src), torch.empty_like(src)
    kernels.axpy_directions_(nearest, src, 0.9, TERMS[:2], 17)
    kernels.axpy_directions_(stochastic, src, 0.9, TERMS[:2], 17, rounding_seed=1)
    exact = src.float() * philox.f32(0.9)
    for seed, coef in TERMS[:2]:
        exact = exact + kernels.normal(seed, 17, src.numel()) * philox.f32(coef)
    differ = stochastic != nearest
    assert int(ulps_apart(stochastic, nearest).max()) <= 1
    low = torch.minimum(stochastic.float(), nearest.float())[differ]
    high = torch.maximum(stochastic.float(), nearest.float())[differ]
    assert bool(((low <= exact[differ]) & (exact[differ] <= high)).all())  # the value lies between the two
    assert 0.2 < differ.float().mean() < 0.3  # E|frac − nearest| = 1/4 for a smooth spread of values


def test_nan_propagates() -> None:
    src = torch.tensor([float("nan"), 1.0], dtype=torch.bfloat16)
    for rounding_seed in (None, 3):
        dst = torch.empty_like(src)
        kernels.axpy_directions_(dst, src, 1.0, [(1, 0.1)], rounding_seed=rounding_seed)
        assert dst[0].isnan() and not dst[1].isnan()


def test_argument_checks() -> None:
    x = torch.zeros(8)
    with pytest.raises(TypeError):
        kernels.axpy_directions_(x, x.half(), 1.0, [])
    with pytest.raises(ValueError):
        kernels.axpy_directions_(x, x, 1.0, [(2**64, 1.0)])
    with pytest.raises(ValueError):
        kernels.axpy_directions_(x[::2], x[::2], 1.0, [])
    kernels.axpy_directions_(x, x, 1.0, [(1, 1.0)] * 3 + [(2, 0.0)])  # zero coefficients do not count


# -------------------------------------------------------------------------------- CUDA (the GPU machine)


# On a GPU the kernel takes the PTX approximate lg2/sin/cos (triton_axpy._box_muller): sin/cos are within
# about 2^-20 absolutely, lg2 within 2^-22; where u1 is within 1e-6 of 1, −2·ln u1 is tiny and its error
# moves r = sqrt(−2·ln u1) (itself below 2e-3) by up to a few 1e-4. So: a hard bound of 1e-3, and nearly
# every element within 1e-5.
APPROX_BOUND, APPROX_TYPICAL = 1e-3, 1e-5


def assert_close_approx(got: torch.Tensor, want: torch.Tensor, scale: float = 1.0) -> None:
    error = (got.double() - want.double()).abs()
    assert float(error.max()) <= APPROX_BOUND * scale
    assert float((error > APPROX_TYPICAL * scale).double().mean()) < 1e-3


@needs_cuda
@pytest.mark.parametrize("offset", [0, 3, 2**40 + 1])
def test_cuda_normal_matches_reference(offset: int) -> None:
    n = 1_000_003
    got = kernels.normal(2**63 + 17, offset, n, "cuda").cpu()
    assert_close_approx(got, philox.normal(2**63 + 17, offset, n))


@needs_cuda
@pytest.mark.parametrize("index", range(len(AXPY_CASES)))
def test_cuda_axpy_matches_reference(index: int) -> None:
    dtype_name, k, offset, rounding_seed, inplace, shrink = AXPY_CASES[index]
    src = axpy_src(index, DTYPES[dtype_name], 100_003)
    want = reference_axpy(src, shrink, TERMS[:k], offset, rounding_seed)
    src = src.cuda()
    dst = src if inplace else torch.empty_like(src)
    kernels.axpy_directions_(dst, src, shrink, TERMS[:k], offset, rounding_seed)
    if k == 0:  # no transcendental functions involved: the rounding must agree bit for bit
        assert torch.equal(dst.cpu().view(torch.uint8), want.view(torch.uint8))
    elif dst.dtype == torch.float32:
        assert_close_approx(dst.cpu(), want, sum(abs(c) for _, c in TERMS[:k]))
    else:  # one rounding step apart at most, and rarely
        got = dst.cpu()
        step = {torch.float16: 2**-10, torch.bfloat16: 2**-7}[got.dtype]
        torch.testing.assert_close(got.float(), want.float(), rtol=2 * step, atol=1e-3)
        assert int((got != want).sum()) <= max(3, got.numel() // 100)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES.values())
def test_cuda_update_fused_with_the_next_probe_equals_two_passes(dtype) -> None:
    src = axpy_src(7, dtype, 300_001).cuda()
    fused, fused_probe = src.clone(), torch.empty_like(src)
    kernels.axpy_directions_(fused, fused, 0.999, TERMS[:2], 2**33 + 3, 11, probe=(fused_probe, 2**64 - 5, 1e-3))
    separate, separate_probe = src.clone(), torch.empty_like(src)
    kernels.axpy_directions_(separate, separate, 0.999, TERMS[:2], 2**33 + 3, 11)
    kernels.axpy_directions_(separate_probe, separate, 1.0, [(2**64 - 5, 1e-3)], 2**33 + 3)
    assert torch.equal(fused.view(torch.uint8), separate.view(torch.uint8))
    assert torch.equal(fused_probe.view(torch.uint8), separate_probe.view(torch.uint8))


@needs_cuda
def test_cuda_stochastic_rounding_of_small_values_matches_bit_for_bit() -> None:
    small = small_values()
    got = torch.empty_like(small, device="cuda")
    kernels.axpy_directions_(got, small.cuda(), 0.7, [], 5, 2**40 + 1)
    assert torch.equal(got.cpu().view(torch.int16), reference_axpy(small, 0.7, [], 5, 2**40 + 1).view(torch.int16))


@needs_cuda
def test_cuda_layout_independent_and_squared_norm() -> None:
    src = axpy_src(5, torch.bfloat16, 1_000_003).cuda()
    whole, parts = src.clone(), src.clone()
    kernels.axpy_directions_(whole, whole, 0.99, TERMS, 2**33 + 2, rounding_seed=4)
    for start, stop in ((0, 4097), (4097, 600_001), (600_001, 1_000_003)):
        kernels.axpy_directions_(parts[start:stop], parts[start:stop], 0.99, TERMS, 2**33 + 2 + start,
                                 rounding_seed=4)
    assert torch.equal(whole.view(torch.int16), parts.view(torch.int16))
    assert kernels.squared_norm(8, 3_000_001, "cuda") == pytest.approx(philox.squared_norm(8, 3_000_001), rel=1e-5)


if __name__ == "__main__":  # the interpreter subprocess of the `interpreted` fixture
    _interpret(sys.argv[1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_more_than_three_directions_take_one_pass_per_three(dtype) -> None:
    """A K-direction update: passes of at most three terms, the shrink in the first only."""
    src = axpy_src(9, dtype, 777)
    terms = [(seed, 0.1 * (seed % 5 - 2)) for seed in range(11, 18)]  # 7 directions: passes of 3, 3, 1
    many = torch.empty_like(src)
    kernels.axpy_directions_(many, src, 0.9, terms, 5)
    by_hand = torch.empty_like(src)
    kernels.axpy_directions_(by_hand, src, 0.9, terms[:3], 5)
    kernels.axpy_directions_(by_hand, by_hand, 1.0, terms[3:6], 5)
    kernels.axpy_directions_(by_hand, by_hand, 1.0, terms[6:], 5)
    assert torch.equal(many, by_hand)
    exact = src.double() * 0.9 + sum(c * kernels.normal(seed, 5, 777).double() for seed, c in terms)
    torch.testing.assert_close(many.double(), exact, rtol=0, atol=1e-5)


@needs_cuda
def test_a_repeated_launch_runs_the_compiled_kernel_directly_with_the_same_bits() -> None:
    """The second launch on the same buffers skips Triton's binding (triton_axpy._LAUNCHED): new seeds and a
    new coefficient must still reach the kernel."""
    from zofw.kernels import triton_axpy

    src = axpy_src(9, torch.float16, 100_003).cuda()
    results = {}
    try:
        for direct in (False, True):
            triton_axpy._DIRECT = direct
            triton_axpy._LAUNCHED.clear()
            dst, probe = src.clone(), torch.empty_like(src)
            for seeds, coefficient in (((1, 2, 3), -0.5), ((4, 5, 6), 0.25)):
                kernels.axpy_directions_(dst, dst, 0.999, [(seeds[0], torch.tensor(coefficient, device="cuda"))], 17,
                                         seeds[1], probe=(probe, seeds[2], 1e-3))
                kernels.axpy_directions_(probe, dst, 1.0, [(seeds[2], -2e-3)], 17)
            results[direct] = (dst.clone(), probe.clone())
            assert bool(triton_axpy._LAUNCHED) == direct
    finally:
        triton_axpy._DIRECT = True
    for slow, fast in zip(results[False], results[True]):
        assert torch.equal(slow.view(torch.int16), fast.view(torch.int16))

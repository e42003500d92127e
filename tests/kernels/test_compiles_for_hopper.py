"""The Triton kernels compile for an H100 (sm_90) on a machine without a GPU.

The interpreter (the CPU tests) runs kernels as Python and accepts things the compiler refuses, such as a
global that is not a constexpr; compiling ahead of time to PTX catches those before a GPU is at hand.
"""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

POINTERS = ("src_ptr", "dst_ptr", "probe_ptr")
ARGUMENTS = {"n": "i64", "first_counter": "i64", "shrink": "fp32", "seed1": "i64", "coef1": "fp32", "seed2": "i64",
             "coef2": "fp32", "seed3": "i64", "coef3": "fp32", "rounding_seed": "i64", "coef_ptr": "*fp32",
             "probe_seed": "i64", "probe_coef": "fp32"}


def compile_for_hopper(fn, signature: dict[str, str], constants: dict) -> str:
    import triton
    from triton.backends.compiler import GPUTarget

    names = list(fn.arg_names)
    full = {name: signature.get(name, "constexpr") for name in names}
    source = triton.compiler.ASTSource(fn=fn, signature=full,
                                       constexprs={(names.index(k),): v for k, v in constants.items()})
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": False}).asm["ptx"]


@pytest.mark.parametrize("dtype, mode", [("fp16", 1), ("bf16", 2), ("fp32", 0), ("fp16", 0), ("bf16", 0)])
@pytest.mark.parametrize("terms, probe, in_memory, head", [(1, True, True, 0), (3, False, False, 5), (0, False, False, 0)])
def test_axpy_kernel_compiles(dtype, mode, terms, probe, in_memory, head) -> None:
    from zofw.kernels import triton_axpy

    signature = {name: f"*{dtype}" for name in POINTERS} | ARGUMENTS
    constants = {"N_TERMS": terms, "HEAD": head, "MODE": mode, "BLOCK": 1024, "FAST": True,
                 "COEFS_IN_MEMORY": in_memory, "PROBE": probe}
    ptx = compile_for_hopper(triton_axpy._axpy_kernel, signature, constants)
    assert ".entry _axpy_kernel" in ptx and ("sin.approx.f32" in ptx) == (terms > 0 or probe)


def test_squared_norm_kernel_compiles() -> None:
    from zofw.kernels import triton_axpy

    ptx = compile_for_hopper(triton_axpy._squares_kernel, {"partial_ptr": "*fp32", "n": "i64", "seed": "i64"},
                             {"BLOCK": 2048, "FAST": True})
    assert ".entry _squares_kernel" in ptx

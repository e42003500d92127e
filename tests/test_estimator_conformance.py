"""zofw.testing.check_estimator: the first-party estimators and the example plugin pass; broken ones fail,
each with the line that names what broke."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

from zofw.directions import iter_direction
from zofw.testing import check_estimator
from zofw_zo.estimators import DPGD0, DPZero, DPZeroMulti, MultiDirectionOptions, SmoothingOptions, TwoPoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "zofw-forward-difference"))
from zofw_forward_difference import ForwardDifference  # noqa: E402  (the example plugin, not installed here)


@pytest.mark.parametrize("estimator, options", [
    (TwoPoint, None), (DPZero, None), (DPZero, SmoothingOptions(direction="sphere")),
    (DPZero, SmoothingOptions(perturbation="inplace")), (DPGD0, None), (ForwardDifference, None),
    (TwoPoint, SmoothingOptions(difference="forward")), (TwoPoint, SmoothingOptions(difference="forward", perturbation="inplace")),
    (DPZeroMulti, MultiDirectionOptions(directions=5)),
    (DPZeroMulti, MultiDirectionOptions(directions=3, direction="sphere", perturbation="inplace"))])
def test_shipped_estimators_conform(estimator, options) -> None:
    check_estimator(estimator, options)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_dp_bitfit_conforms_on_the_biases(optimizer) -> None:
    from zofw_zo.bitfit import BitFitOptions, DPBitFit

    check_estimator(DPBitFit, BitFitOptions(optimizer=optimizer), trainable="bias")


class TooWide(TwoPoint):
    name = "too_wide"

    def per_example(self, params, losses, seed):
        measured = super().per_example(params, losses, seed)
        measured.values = measured.values.repeat(1, 2)  # two values per example, one declared
        return measured


class ForgetsToRestore(ForwardDifference):
    name = "forgets_to_restore"

    def update(self, params, seed, coefficients, context):
        for _, tensor, z in iter_direction(params, seed):
            tensor.add_(z, alpha=-context.lr * float(coefficients[0]))  # no −λu: θ stays displaced


class UnseededDirections(TwoPoint):
    name = "unseeded"

    def per_example(self, params, losses, seed):
        return super().per_example(params, losses, int(torch.randint(0, 2**62, ())))  # ignores the seed


class DropsParameterNoise(DPGD0):
    name = "drops_parameter_noise"

    def update(self, params, seed, coefficients, context):
        super().update(params, seed, coefficients, type(context)(context.step, context.lr, context.weight_decay))


class Ascends(TwoPoint):
    name = "ascends"

    def update(self, params, seed, coefficients, context):
        super().update(params, seed, -coefficients, context)


@pytest.mark.parametrize("broken, message", [
    (TooWide, "shape (b, K)"), (ForgetsToRestore, "did not restore θ"), (UnseededDirections, "same seed"),
    (DropsParameterNoise, "parameter noise"), (Ascends, "did not lower")])
def test_broken_estimators_fail_with_their_reason(broken, message) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)) as failure:
        check_estimator(broken)
    assert str(failure.value).startswith(f"estimator '{broken.name}':") and "\n" not in str(failure.value)

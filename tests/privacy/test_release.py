"""The private release, tested as an adversary would: change one example (extreme, NaN, inf) and
measure what moves; fix every value and measure where the update goes."""

from __future__ import annotations

import math

import pytest
import torch

from zofw.directions import direction_seeds
from zofw.errors import BadInput, RunFailed
from zofw.plugins import registries
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import Estimator, PerExample, UpdateContext
from zofw_zo.clippers import BoundOptions, L2Clipper, ScalarClipper
from zofw_zo.estimators import DPGD0, DPZero, SmoothingOptions
from zofw_zo.noise import GaussianNoise, LaplaceNoise

from tests.plugins.test_estimators import direction, quadratic

HOSTILE = [math.nan, math.inf, -math.inf, 1e300]


class FourDirections(DPZero):
    name = "four_directions"

    def directions(self) -> int:
        return 4


def release_for(estimator: Estimator, clipper=None, sigma: float = 1.0, divisor: float = 1.0,
                source: SecretStream | None = None, ledger: PrivacyLedger | None = None) -> PrivateRelease:
    # the noise the estimator needs (DP-ZO: Laplace), Gaussian otherwise
    noise = LaplaceNoise(LaplaceNoise.Options()) if estimator.requires_mechanism == "laplace" else \
        GaussianNoise(GaussianNoise.Options())
    return PrivateRelease(clipper or ScalarClipper(BoundOptions(bound=3.0)), noise,
                          sigma, 0.1, estimator, divisor, source or SecretStream(), ledger or PrivacyLedger(1e-5))


@pytest.mark.parametrize("clipper_class", [ScalarClipper, L2Clipper])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_one_extreme_nan_or_inf_example_moves_the_clipped_sum_by_at_most_the_sensitivity(clipper_class, hostile):
    clipper = clipper_class(BoundOptions(bound=1.5))
    release = release_for(FourDirections(SmoothingOptions()), clipper)
    values = torch.randn(50, 4, dtype=torch.float64) * 10
    poisoned = torch.full((1, 4), hostile, dtype=torch.float64)
    poisoned[0, 1] = 1e6  # a row mixing a hostile value and a huge finite one
    with_it = release.clipped_sum(PerExample(torch.cat([values, poisoned])))
    without = release.clipped_sum(PerExample(values))
    assert torch.isfinite(with_it).all()
    assert float((with_it - without).norm()) <= clipper.sensitivity(4) + 1e-9
    # and the rule is fixed: the other examples' clipped values are untouched by the poisoned one
    assert torch.equal(release.clipped_sum(PerExample(values)), without)


@pytest.mark.parametrize("hostile", HOSTILE[:3])
def test_a_nan_or_inf_loss_never_reaches_the_parameters(hostile):
    params, losses, _ = quadratic()
    estimator = DPZero(SmoothingOptions())

    def poisoned() -> torch.Tensor:
        out = losses()
        out[2] = hostile
        return out

    release = release_for(estimator, sigma=0.5, divisor=5.0)
    for step in range(5):
        measured = estimator.per_example(params, poisoned, seed=step)
        released = release.privatize(measured)
        assert torch.isfinite(released.coefficients).all()
        estimator.update(params, step, released.coefficients, UpdateContext(step + 1, 0.01, 0.0, released.parameter_noise))
    assert all(torch.isfinite(t).all() for t in params.tensors)


def test_noise_std_is_sigma_times_sensitivity_from_the_secure_source():
    release = release_for(DPZero(SmoothingOptions()), sigma=2.0)
    draws = release.noised(torch.zeros(40000, 1, dtype=torch.float64))
    assert float(draws.std()) == pytest.approx(6.0, rel=0.02)
    assert abs(float(draws.mean())) < 0.1
    # a fresh OS-keyed stream each time: two releases never draw the same noise
    assert not torch.equal(release_for(DPZero(SmoothingOptions())).noised(torch.zeros(4, 1, dtype=torch.float64)),
                           release_for(DPZero(SmoothingOptions())).noised(torch.zeros(4, 1, dtype=torch.float64)))


def test_bound_scale_applies_to_the_clip_but_not_to_the_noise():
    release = release_for(DPZero(SmoothingOptions()), ScalarClipper(BoundOptions(bound=4.0)))
    clipped = release.clipped_sum(PerExample(values=torch.tensor([[100.0]]), bound_scale=0.25))
    assert float(clipped) == 1.0 and release.scale == 4.0 and math.isclose(release.event().noise_multiplier, 1.0)


def release_space_estimators() -> list[type[Estimator]]:
    """Private estimators that release values along public directions, noised where released (a
    first-order estimator releases gradients instead: tests/plugins/test_dp_bitfit.py)."""
    return [entry.component for entry in registries()["estimators"] if entry.component.private
            and entry.component.noise_space == "release" and entry.component.uses_directions]


@pytest.mark.parametrize("estimator_class", release_space_estimators(), ids=lambda c: c.name)
def test_with_values_fixed_a_release_space_update_moves_theta_only_along_u(estimator_class):
    params, losses, _ = quadratic()
    before = torch.cat([t.flatten() for t in params.tensors]).clone()
    estimator = estimator_class(estimator_class.Options())
    release = release_for(estimator, sigma=5.0, divisor=4.0)
    measured = estimator.per_example(params, losses, seed=3)
    measured.values = torch.zeros_like(measured.values)  # every per-example value fixed at 0: only noise remains
    released = release.privatize(measured)
    assert released.parameter_noise is None and float(released.public.abs().sum()) > 0
    estimator.update(params, 3, released.coefficients, UpdateContext(1, 0.1, 0.0, released.parameter_noise))
    step = torch.cat([t.flatten() for t in params.tensors]) - before
    # the K public directions of the step (K = 1: u(seed) itself)
    basis = torch.stack([direction(params, s) for s in direction_seeds(3, estimator.directions())], dim=1)
    along = basis @ torch.linalg.lstsq(basis, step.unsqueeze(1)).solution
    orthogonal = step - along.squeeze(1)
    assert float(step.norm()) > 1e-3  # the noisy values moved θ …
    assert float(orthogonal.norm()) < 1e-9 * float(step.norm()) + 1e-12  # … along the u_k and nowhere else


def test_dpgd0_releases_no_noisy_scalar_and_noises_every_coordinate_once():
    params, losses, _ = quadratic()
    estimator = DPGD0(SmoothingOptions())
    release = release_for(estimator, sigma=1.0, divisor=2.0)
    measured = estimator.per_example(params, losses, seed=4)
    released = release.privatize(measured)
    assert released.public is None  # the scalar alone is never released: nothing of it may be logged
    exact = release.clipped_sum(measured) / 2.0
    assert torch.equal(released.coefficients, exact)  # the scalar carries no noise of its own
    estimator.update(params, 4, released.coefficients, UpdateContext(1, 0.1, 0.0, released.parameter_noise))
    released.check_complete(params)
    assert released.parameter_noise.drawn == params.numel()


def test_a_parameter_space_estimator_that_forgets_the_noise_is_stopped():
    class Forgetful(DPGD0):
        name = "forgetful"

        def update(self, params, seed, coefficients, context):
            super().update(params, seed, coefficients, UpdateContext(context.step, context.lr, 0.0, None))

    params, losses, _ = quadratic()
    estimator = Forgetful(SmoothingOptions())
    released = release_for(estimator).privatize(estimator.per_example(params, losses, seed=1))
    estimator.update(params, 1, released.coefficients, UpdateContext(1, 0.1, 0.0, released.parameter_noise))
    with pytest.raises(RunFailed, match="drew noise for 0 of"):
        released.check_complete(params)


def test_the_ledger_is_on_disk_before_the_release_it_records(tmp_path):
    path = tmp_path / "ledger.json"
    ledger = PrivacyLedger(1e-5)
    release = PrivateRelease(ScalarClipper(BoundOptions(bound=1.0)), GaussianNoise(GaussianNoise.Options()), 1.0, 0.1,
                             DPZero(SmoothingOptions()), 1.0, SecretStream(), ledger, path)

    class Watching(GaussianNoise):
        def sample(self, shape, scale, source):
            seen.append(PrivacyLedger.from_json(path.read_text()).steps)
            return super().sample(shape, scale, source)

    seen: list[int] = []
    release.noise = Watching(GaussianNoise.Options())
    for _ in range(3):
        release.privatize(PerExample(torch.ones(2, 1)))
    assert seen == [1, 2, 3]


def test_laplace_style_noise_is_scaled_by_the_l1_sensitivity():
    class L1Noise(GaussianNoise):
        name, mechanism, sensitivity_norm = "l1_test", "laplace", "l1"

    release = PrivateRelease(ScalarClipper(BoundOptions(bound=2.0)), L1Noise(GaussianNoise.Options()), 3.0, 0.1,
                             FourDirections(SmoothingOptions()), 1.0,
                             SecretStream(), PrivacyLedger(1e-5))
    assert release.scale == pytest.approx(3.0 * 2.0 * 4)  # σ × C·K (L1), not σ × C·√K (L2)


def test_parameter_space_estimators_need_noise_that_can_fill_parameters():
    class ScalarOnly(GaussianNoise):
        name = "scalar_only"
        sample_like = GaussianNoise.__mro__[1].sample_like  # the base class's: not implemented

    with pytest.raises(BadInput, match="cannot"):
        PrivateRelease(ScalarClipper(BoundOptions(bound=1.0)), ScalarOnly(GaussianNoise.Options()), 1.0, 0.1,
                       DPGD0(SmoothingOptions()), 1.0, SecretStream(), PrivacyLedger(1e-5))


@pytest.mark.parametrize("values, bound_scale, message", [(torch.ones(3, 2), 1.0, "declared 1 direction"),
                                                           (torch.ones(3, 1), 2.0, "bound_scale")])
def test_values_wider_or_looser_than_declared_are_refused(values, bound_scale, message):
    release = release_for(DPZero(SmoothingOptions()))
    with pytest.raises(RunFailed, match=message):
        release.privatize(PerExample(values, bound_scale=bound_scale))


def test_a_non_private_release_also_refuses_values_wider_than_declared():
    from zofw.errors import RunFailed
    from zofw.privacy.release import NoPrivacy
    from zofw.slots.estimator import PerExample

    with pytest.raises(RunFailed, match="declared 1 direction"):
        NoPrivacy(4.0, directions=1).privatize(PerExample(values=torch.ones(4, 3)))
    assert NoPrivacy(4.0, directions=3).privatize(PerExample(values=torch.ones(4, 3))).coefficients.tolist() == [1.0] * 3

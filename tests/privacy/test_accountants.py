"""The accountants reproduce independently measured ε values (docs: ALGORITHMS.md §6)."""

from __future__ import annotations

import pytest

from zofw.plugins import registries
from zofw.privacy.calibrate import calibrate_noise_multiplier
from zofw.privacy.ledger import PrivacyEvent

# (q, σ, T) -> ε at δ = 1e-5 for RDP / PLD / PRV upper bound
MEASURED = {
    (0.064, 1.0, 1000): (16.06, 14.68, 14.69),
    (0.00512, 1.0, 585): (1.105, 0.695, 0.705),
}


def accountant(name: str):
    entry = registries()["accountants"].get(name)
    return entry.component(entry.component.Options())


@pytest.mark.parametrize("setting", MEASURED)
@pytest.mark.parametrize("index,name", [(0, "rdp"), (1, "pld"), (2, "prv")])
def test_epsilon_matches_measured_values(setting, index, name):
    q, sigma, steps = setting
    epsilon = accountant(name).epsilon([PrivacyEvent("gaussian", sigma, q, steps)], 1e-5)
    assert epsilon == pytest.approx(MEASURED[setting][index], rel=0.01)


def test_split_ledger_composes_like_one_event():
    whole = [PrivacyEvent("gaussian", 1.0, 0.064, 1000)]
    split = [PrivacyEvent("gaussian", 1.0, 0.064, 400), PrivacyEvent("gaussian", 1.0, 0.064, 600)]
    for name in ("rdp", "pld"):
        assert accountant(name).epsilon(split, 1e-5) == pytest.approx(accountant(name).epsilon(whole, 1e-5), rel=1e-3)


def test_empty_ledger_spends_nothing():
    assert all(accountant(name).epsilon([], 1e-5) == 0.0 for name in ("rdp", "pld", "prv"))


def test_rdp_calibration_matches_measured_sigma():
    rdp = accountant("rdp")
    sigma = calibrate_noise_multiplier(
        lambda s: rdp.epsilon([PrivacyEvent("gaussian", s, 0.064, 1000)], 1e-5), 2.0)
    assert sigma == pytest.approx(4.47, rel=0.01)
    assert rdp.epsilon([PrivacyEvent("gaussian", sigma, 0.064, 1000)], 1e-5) <= 2.0


def test_more_noise_or_fewer_steps_spend_less():
    rdp = accountant("rdp")
    base = rdp.epsilon([PrivacyEvent("gaussian", 1.0, 0.01, 1000)], 1e-5)
    assert rdp.epsilon([PrivacyEvent("gaussian", 2.0, 0.01, 1000)], 1e-5) < base
    assert rdp.epsilon([PrivacyEvent("gaussian", 1.0, 0.01, 100)], 1e-5) < base


def test_unsupported_mechanism_is_refused():
    from zofw.errors import BadInput

    with pytest.raises(BadInput, match="cannot compose"):
        accountant("prv").epsilon([PrivacyEvent("laplace", 1.0, 0.01, 10)], 1e-5)


def test_calibration_meets_the_target_tightly_in_few_accountant_calls():
    pld = accountant("pld")
    calls = []

    def epsilon_of(sigma: float) -> float:
        calls.append(sigma)
        return pld.epsilon([PrivacyEvent("gaussian", sigma, 0.016, 300)], 1e-5)

    sigma = calibrate_noise_multiplier(epsilon_of, 2.0)
    assert epsilon_of(sigma) <= 2.0
    assert epsilon_of(sigma * (1 - 2e-3)) > 2.0  # and no more noise than needed
    assert len(calls) <= 10 + 2

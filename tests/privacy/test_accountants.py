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


def test_fixed_size_batches_are_accounted_by_rdp_as_sampling_without_replacement():
    import dp_accounting
    from dp_accounting import dp_event
    from dp_accounting.rdp import rdp_privacy_accountant

    event = PrivacyEvent("gaussian", 1.2, 64 / 10_000, 500, "replace-one", sampling="fixed_size", dataset_size=10_000)
    reference = rdp_privacy_accountant.RdpAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    reference.compose(dp_event.SelfComposedDpEvent(
        dp_event.SampledWithoutReplacementDpEvent(10_000, 64, dp_event.GaussianDpEvent(1.2)), 500))
    assert accountant("rdp").epsilon([event], 1e-5) == pytest.approx(reference.get_epsilon(1e-5), rel=1e-12)


@pytest.mark.parametrize("name", ["pld", "prv", "pure"])
def test_accountants_that_do_not_model_fixed_size_batches_refuse_them_in_one_line(name):
    from zofw.errors import BadInput

    event = PrivacyEvent("laplace" if name == "pure" else "gaussian", 1.2, 0.0064, 5, "replace-one",
                         sampling="fixed_size", dataset_size=10_000)
    with pytest.raises(BadInput) as refused:
        accountant(name).epsilon([event], 1e-5)
    assert str(refused.value).startswith(f"accountant '{name}' cannot compose a ") and "\n" not in str(refused.value)
    assert "fixed_size sampling" in str(refused.value)


def test_events_whose_relation_norm_or_n_do_not_fit_are_refused():
    from zofw.errors import BadInput

    mismatched = [PrivacyEvent("gaussian", 1.0, 0.01, 10, "replace-one"),  # Poisson is add/remove-one
                  PrivacyEvent("laplace", 1.0, 0.01, 10, sensitivity_norm="l2"),  # Laplace's σ is relative to L1
                  PrivacyEvent("gaussian", 1.0, 0.01, 10, "replace-one", sampling="fixed_size")]  # no n
    for event, name in zip(mismatched, ["rdp", "pld", "rdp"]):
        with pytest.raises(BadInput, match=f"^accountant '{name}' cannot compose"):
            accountant(name).epsilon([event], 1e-5)
    with pytest.raises(BadInput, match="two neighbouring relations"):
        accountant("rdp").epsilon([PrivacyEvent("gaussian", 1.0, 0.01, 10),
                                   PrivacyEvent("gaussian", 1.0, 0.01, 10, "replace-one", sampling="fixed_size",
                                                dataset_size=100)], 1e-5)


def test_a_third_party_accountant_checks_events_without_writing_the_check():
    from zofw.errors import BadInput
    from zofw.slots.accountant import Accountant

    class Naive(Accountant):  # composes anything it is handed, if nothing stops it
        name = "naive"

        def epsilon(self, events, delta):
            return 0.0

    naive = Naive(Naive.Options())
    assert naive.epsilon([PrivacyEvent("gaussian", 1.0, 0.01, 10)], 1e-5) == 0.0
    with pytest.raises(BadInput, match="^accountant 'naive' cannot compose a laplace event"):
        naive.epsilon([PrivacyEvent("laplace", 1.0, 0.01, 10)], 1e-5)

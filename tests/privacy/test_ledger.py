from __future__ import annotations

from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger


def test_identical_steps_are_run_length_encoded_and_round_trip(tmp_path):
    ledger = PrivacyLedger(1e-5)
    for _ in range(5):
        ledger.record(PrivacyEvent("gaussian", 1.2, 0.01))
    ledger.record(PrivacyEvent("gaussian", 2.0, 0.01))
    assert [(e.noise_multiplier, e.steps) for e in ledger.events] == [(1.2, 5), (2.0, 1)]
    assert ledger.steps == 6
    ledger.save(tmp_path / "ledger.json")
    again = PrivacyLedger.from_json((tmp_path / "ledger.json").read_text())
    assert again.events == ledger.events and again.delta == 1e-5

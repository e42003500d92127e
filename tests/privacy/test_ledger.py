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


def test_a_hostile_ledger_file_is_refused_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from zofw.cli import app

    cases = {"nan.json": '{"delta": NaN, "events": []}', "deep.json": "[" * 100_000 + "]" * 100_000,
             "fields.json": '{"delta": 1e-5, "events": [{"mechanism": "gaussian"}]}',
             "range.json": '{"delta": 1e-5, "events": [{"mechanism": "gaussian", "noise_multiplier": -1, '
                           '"sample_rate": 0.1, "steps": 3}]}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        folder = tmp_path / name.removesuffix(".json")
        folder.mkdir()
        (tmp_path / name).rename(folder / "privacy_ledger.json")
        result = CliRunner().invoke(app, ["privacy", str(folder)])
        assert result.exit_code == 2, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "privacy_ledger.json" in result.output

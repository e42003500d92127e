"""Every shipped recipe validates, starts with the command that runs it, and is shrinkable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from zofw.cli import app, quickstart_path

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"quickstart.toml", "dpzero_opt2.7b_drop.toml"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates_and_documents_its_command(recipe):
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output
    header = [line for line in recipe.read_text().splitlines() if line.startswith("#")][:5]
    assert any(f"zofw run recipes/{recipe.name}" in line for line in header)


def test_the_embedded_quickstart_is_the_shipped_one():
    assert quickstart_path().read_text() == (RECIPES[0].parent / "quickstart.toml").read_text()

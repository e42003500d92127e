"""Every shipped recipe validates (its `extends` chain resolved), starts with the command that runs it,
and its documented smoke command validates; `extends` merges recipes as documented."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zofw.cli import app, quickstart_path
from zofw.config import load_recipe, read_recipe
from zofw.errors import BadInput

FOLDER = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(FOLDER.glob("*.toml"))
BASES = sorted((FOLDER / "base").glob("*.toml"))
# the published settings (issue 9): DPZero on RoBERTa-large and OPT, MeZO on OPT-13B, DP-BiTFiT
PUBLISHED = {f"dpzero_roberta-large_{t}.toml" for t in ("sst2", "sst5", "snli", "mnli", "rte", "trec")} | {
    f"dpzero_opt{size}_{t}.toml" for size in ("1.3b", "2.7b", "6.7b") for t in ("sst2", "boolq", "squad", "drop")} | {
    "mezo_opt13b_drop.toml", "dp_bitfit_roberta-large_sst2.toml"}


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"quickstart.toml", "dpzero_opt2.7b_drop.toml"} | PUBLISHED


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates_and_documents_its_command(recipe):
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output
    header = [line for line in recipe.read_text().splitlines() if line.startswith("#")][:5]
    assert any(f"zofw run recipes/{recipe.name}" in line for line in header)


def smoke_overrides(recipe: Path, tiny: dict[str, Path]) -> list[str]:
    """The --set overrides of the recipe's "# Smoke:" command, placeholders filled (files that
    ../shared/data lacks, named in capitals, are left out)."""
    lines = recipe.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Smoke:"))
    command = ""
    for line in lines[start:]:
        command += " " + line.lstrip("#").strip().removeprefix("Smoke:").split("(")[0].rstrip("\\ ")
        if not line.rstrip().endswith("\\"):
            break
    words = shlex.split(command)
    sets = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    filled = []
    for assignment in sets:
        key, value = assignment.split("=", 1)
        if value in tiny:
            value = str(tiny[value])
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
            continue
        filled.append(f"{key}={value}")
    return filled


@pytest.mark.parametrize("recipe", [p for p in RECIPES if p.name != "quickstart.toml"], ids=lambda p: p.name)
def test_the_documented_smoke_command_validates(recipe, tiny_opt, tiny_roberta):
    sets = smoke_overrides(recipe, {"TINY_OPT_DIR": tiny_opt, "TINY_ROBERTA_DIR": tiny_roberta})
    assert any(s.startswith("model.path=") for s in sets) and any(s.startswith("train.steps=") for s in sets)
    args = [part for s in sets for part in ("--set", s)]
    result = CliRunner().invoke(app, ["validate", str(recipe), *args])
    assert result.exit_code == 0, result.output


def test_the_dp_bitfit_smoke_command_runs(tiny_roberta, tmp_path):
    recipe = FOLDER / "dp_bitfit_roberta-large_sst2.toml"
    sets = smoke_overrides(recipe, {"TINY_ROBERTA_DIR": tiny_roberta}) + ["train.steps=2", "task.n_eval=6"]
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run"), "--json",
                                      *[part for s in sets for part in ("--set", s)]])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1][result.output.strip().splitlines()[-1].index("{"):])
    assert record["steps"] == 2 and "accuracy" in record["metrics"]


def test_every_base_is_extended_and_no_base_is_a_recipe_alone():
    extended = set()
    for recipe in RECIPES + BASES:
        match = re.search(r'^extends = "([^"]+)"', recipe.read_text(), re.M)
        if match:
            extended.add((recipe.parent / match.group(1)).resolve())
    assert {base.resolve() for base in BASES} <= extended
    for base in BASES:
        with pytest.raises(BadInput):
            load_recipe(base)


def test_the_kept_drop_recipe_keeps_its_numbers():
    recipe = load_recipe(FOLDER / "dpzero_opt2.7b_drop.toml")
    model, task, clipper = recipe.model.options(), recipe.task.options(), recipe.clipper.options()
    assert (recipe.model.name, model["path"], model["dtype"], model["max_length"]) == (
        "causal_lm", "facebook/opt-2.7b", "float16", 2048)
    assert (recipe.task.name, task["n_train"], task["n_eval"]) == ("drop", 1000, 1000)
    assert (recipe.estimator.name, recipe.estimator.options()["smoothing"], clipper["bound"]) == ("dpzero", 1e-3, 50.0)
    assert (recipe.train.steps, recipe.train.expected_batch, recipe.train.lr) == (20000, 8, 1e-6)
    assert (recipe.privacy.epsilon, recipe.privacy.delta, recipe.seed) == (2.0, 1e-5, 42)
    mezo = load_recipe(FOLDER / "mezo_opt13b_drop.toml")
    assert mezo.estimator.name == "two_point" and mezo.privacy is None and mezo.clipper is None


# --- extends ----------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_deep_merges_the_chain_child_wins(tmp_path):
    write(tmp_path / "base" / "root.toml", 'seed = 1\n[model]\nname = "m"\npath = "p"\ndtype = "float16"\n'
                                           '[train]\nsteps = 10\nlr = 0.1\nexpected_batch = 4\n')
    write(tmp_path / "base" / "middle.toml", 'extends = "root.toml"\nseed = 2\n[model]\ndtype = "float32"\n'
                                             '[task]\nname = "t"\nn_eval = 5\nlist = [1, 2]\n')
    child = write(tmp_path / "child.toml", 'extends = "base/middle.toml"\n[task]\nlist = [3]\n[train]\nsteps = 20\n')
    assert read_recipe(child) == {"seed": 2, "model": {"name": "m", "path": "p", "dtype": "float32"},
                                  "task": {"name": "t", "n_eval": 5, "list": [3]},
                                  "train": {"steps": 20, "lr": 0.1, "expected_batch": 4}}


def test_extends_cycles_and_bad_bases_are_one_line_exit_2(tmp_path):
    a = write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "./a.toml"\n')
    result = CliRunner().invoke(app, ["validate", str(a)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "extends cycle" in result.output and "a.toml -> " in result.output
    selfish = write(tmp_path / "self.toml", 'extends = "self.toml"\n')
    with pytest.raises(BadInput, match="extends cycle"):
        read_recipe(selfish)
    missing = write(tmp_path / "missing.toml", 'extends = "nowhere/base.toml"\n')
    with pytest.raises(BadInput, match=r"nowhere/base\.toml"):
        read_recipe(missing)
    for value in ("3", "[\"a.toml\"]", '""'):
        odd = write(tmp_path / "odd.toml", f"extends = {value}\n")
        with pytest.raises(BadInput, match="extends: must be the path of a base recipe"):
            read_recipe(odd)
    chain = [write(tmp_path / "long" / f"{i}.toml", f'extends = "{i + 1}.toml"\n') for i in range(40)]
    with pytest.raises(BadInput, match="extends chain longer than"):
        read_recipe(chain[0])


def test_overrides_apply_after_the_chain(tmp_path):
    recipe = FOLDER / "dpzero_roberta-large_trec.toml"
    loaded = load_recipe(recipe, ["train.steps=7", "task.k_per_class=3"])
    assert loaded.train.steps == 7 and loaded.task.options()["k_per_class"] == "3" and loaded.task.name == "trec"
    assert loaded.train.expected_batch == 64 and loaded.clipper.options()["bound"] == 200.0


def test_the_embedded_quickstart_is_the_shipped_one():
    assert quickstart_path().read_text() == (FOLDER / "quickstart.toml").read_text()

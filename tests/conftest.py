"""Shared fixtures: the real data folder, a tiny OPT checkpoint, and an in-test plugin."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Literal, Sequence

import pytest
import torch
from pydantic import Field

from zofw import hookimpl
from zofw.params import TrainableParams
from zofw.plugins import plugin_manager
from zofw.slots.base import Options
from zofw.slots.model import ModelAdapter
from zofw.slots.task import Example, Task

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZOFW_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def save_random(model_class, config, directory: Path) -> Path:
    """Save a random-weight model (seed 0) like a hub checkpoint."""
    torch.manual_seed(0)
    model_class(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_opt(tmp_path_factory, shared_data) -> Path:
    """A 2-layer random-weight OPT with the real OPT vocabulary."""
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(vocab_size=50272, hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=2,
                       ffn_dim=64, num_attention_heads=2, max_position_embeddings=1024)
    return save_random(OPTForCausalLM, config, tmp_path_factory.mktemp("tiny-opt"))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory, shared_data) -> Path:
    """A 2-layer random-weight RoBERTa with the real RoBERTa vocabulary."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(vocab_size=50265, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=514, type_vocab_size=1)
    return save_random(RobertaForMaskedLM, config, tmp_path_factory.mktemp("tiny-roberta"))


# --- an in-test plugin: logistic regression on vectors written as text --------------------------


class ToyTaskOptions(Options):
    n_train: int = Field(400, gt=0)
    n_eval: int = Field(200, gt=0)
    dims: int = Field(8, gt=0)


class ToyTask(Task):
    """Linearly separable points written as text; the label is the side of a fixed hyperplane."""

    name = "toy"
    kind = "classification"
    main_metric = "accuracy"
    Options = ToyTaskOptions

    def load(self, split: Literal["train", "eval"], seed: int) -> list[Example]:
        rng = random.Random(f"{seed}-{split}")
        count = self.options.n_train if split == "train" else self.options.n_eval
        examples = []
        for _ in range(count):
            x = [rng.gauss(0, 1) for _ in range(self.options.dims)]
            label = int(sum(x[: self.options.dims // 2]) > sum(x[self.options.dims // 2:]))
            examples.append(Example(" ".join(f"{v:.4f}" for v in x), ("no", "yes")[label:label + 1],
                                    ("no", "yes"), label))
        return examples

    def score(self, predictions: Sequence[int], examples: Sequence[Example]) -> dict[str, float]:
        right = sum(p == e.label for p, e in zip(predictions, examples))
        return {"accuracy": 100.0 * right / len(examples)}


class ToyModelOptions(Options):
    dims: int = Field(8, gt=0)


class ToyModel(ModelAdapter):
    """Logistic regression θ·x, starting at a wrong hyperplane."""

    name = "toy_linear"
    Options = ToyModelOptions

    def load(self, kind) -> None:
        self.module = torch.nn.Linear(self.options.dims, 1, bias=False)
        with torch.no_grad():
            self.module.weight.fill_(0.1)

    def trainable(self) -> TrainableParams:
        return TrainableParams.select(self.module, "all")

    def encode(self, examples: Sequence[Example]) -> list:
        return [(torch.tensor([float(v) for v in e.prompt.split()]), e.label) for e in examples]

    def losses(self, batch, shape) -> torch.Tensor:
        if not batch:
            return torch.zeros(0)
        x = torch.stack([b[0] for b in batch])
        y = torch.tensor([float(b[1]) for b in batch])
        logits = self.module(x).squeeze(1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")

    def predict(self, examples, kind, batch_size) -> list[int]:
        x = torch.stack([item[0] for item in self.encode(examples)])
        return (self.module(x).squeeze(1) > 0).long().tolist()


class ToyPlugin:
    @hookimpl
    def register_tasks(self, register):
        register(ToyTask)

    @hookimpl
    def register_models(self, register):
        register(ToyModel)


@pytest.fixture
def toy_plugin():
    pm = plugin_manager()
    plugin = ToyPlugin()
    pm.register(plugin, name="toy-test-plugin")
    yield plugin
    pm.unregister(plugin)


TOY_RECIPE = """
seed = 3
[model]
name = "toy_linear"
[task]
name = "toy"
[estimator]
name = "dpzero"
smoothing = 1e-3
[clipper]
name = "scalar"
bound = 2.0
[privacy]
epsilon = 4.0
delta = 1e-5
accountant = "rdp"
report = ["rdp", "pld"]
[train]
steps = 300
expected_batch = 40
lr = 0.05
eval_every = 100
"""


@pytest.fixture
def toy_recipe(tmp_path, toy_plugin) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(TOY_RECIPE)
    return path

"""``support_tickets``: route real customer-support messages to one of eight card intents (the quickstart).

The data is real: the eight card-related intents of BANKING77 (Casanueva et al., 2020; CC BY 4.0; online
banking queries written by people, each labelled with its intent), vendored inside the wheel under
``zofw/recipes/data/banking77_cards`` with its licence and a README saying what was taken and how. Each row is
one customer's message, so "one example" in the privacy guarantee is one real message.

Splits: ``train`` (863 messages of BANKING77's train file), ``validation`` (20 per intent held out of the
same file, 160, for choosing settings) and ``test`` (BANKING77's own test rows of these intents, 320, the
reported number). No text occurs twice, nor in two splits. The quickstart's settings were chosen on
``validation``; its README number is on ``test``.

The files are read by :mod:`zofw_tasks.user_data`'s ``text_classification``: exactly what a user's own CSV
gets.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field

from zofw.slots.base import Options
from zofw.slots.task import Example, Prediction, Task
from zofw_tasks.metrics import accuracy
from zofw_tasks.user_data import TextClassification, TextClassificationOptions

INTENTS = ("activate_my_card", "card_arrival", "card_delivery_estimate", "card_not_working",
           "card_payment_not_recognised", "compromised_card", "declined_card_payment", "lost_or_stolen_card")
CHOICES = tuple(intent.replace("_", " ") for intent in INTENTS)  # what each message is compared with
SPLITS = ("train", "validation", "test")


def data_dir() -> Path:
    """The vendored BANKING77 subset inside the installed package."""
    return Path(str(resources.files("zofw") / "recipes" / "data" / "banking77_cards"))


class SupportOptions(Options):
    n_train: int = Field(1000, gt=0)  # training messages drawn with the seed (all 863 by default)
    n_eval: int = Field(1000, gt=0)  # evaluation messages drawn with the seed (all by default)
    eval_on: Literal["test", "validation"] = "test"  # validation: for choosing settings; test: for reporting


class SupportTickets(Task):
    """Route real support messages (BANKING77, 8 card intents, CC BY 4.0) to their intent."""

    name = "support_tickets"
    kind = "classification"
    main_metric = "accuracy"
    Options = SupportOptions
    options: SupportOptions

    def files(self) -> TextClassification:
        folder = data_dir()
        return TextClassification(TextClassificationOptions(
            path=str(folder / "train.csv"), eval_path=str(folder / f"{self.options.eval_on}.csv"),
            labels=list(INTENTS), choices=list(CHOICES), n_train=self.options.n_train, n_eval=self.options.n_eval))

    def check(self) -> None:
        self.files().check()

    def load(self, split: Literal["train", "eval"], seed: int) -> list[Example]:
        return self.files().load(split, seed)

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return accuracy(predictions, examples)

"""``support_tickets``: route customer-support messages to one of four teams (the quickstart task).

The data is zofw's own: generated from the phrase lists below, deterministically from the seed, so the
quickstart needs no download. Training and evaluation messages use disjoint openers and closers and
draw from disjoint halves of every problem list, so the evaluation measures generalisation, not recall.
"""

from __future__ import annotations

import random
from typing import Literal, Sequence

from pydantic import Field

from zofw.slots.base import Options
from zofw.slots.task import Example, Prediction, Task
from zofw_tasks.metrics import accuracy

# Each team: problems phrased as a customer would, without the team's name in them.
PROBLEMS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for the same order", "my invoice shows the wrong amount",
        "the refund still has not reached my card", "you took money after I cancelled my subscription",
        "there is a fee on my statement I do not recognise", "the discount code was not applied to my total",
        "I need a copy of last month's receipt", "my payment was declined but the bank says it went through",
        "the price went up without any notice", "I was billed for a plan I never chose",
        "the tax on my bill looks wrong", "I paid by transfer and it still says unpaid",
    ],
    "shipping": [
        "my parcel has not arrived after two weeks", "the tracking number does not work",
        "the box came crushed and the contents are broken", "the courier left my package at the wrong address",
        "delivery was promised for Monday and nothing came", "I received someone else's order",
        "can I change the delivery address of my order", "half of the items were missing from the box",
        "the parcel is stuck at the depot for days", "the driver never rang the bell and took it back",
        "I need the order sent to my office instead", "the package was marked delivered but it is not here",
    ],
    "technical": [
        "the app crashes as soon as I open it", "the website shows an error when I press the button",
        "the device will not turn on after the update", "the screen freezes every few minutes",
        "the sync between my phone and laptop stopped working", "the battery drains within an hour",
        "the software says the file is corrupted", "the printer is not detected by my computer",
        "the video keeps buffering even on fast wifi", "notifications stopped showing on my phone",
        "the search page loads forever", "the firmware update failed halfway through",
    ],
    "account": [
        "I cannot log in even with the right password", "I forgot my password and the reset email never comes",
        "someone else may have accessed my profile", "I want to change the email address on my profile",
        "please delete my account and all my data", "the two-factor code is not accepted",
        "my username was changed without my permission", "I am locked out after too many attempts",
        "how do I merge my two profiles", "I want to update my name and phone number",
        "my account was suspended for no reason", "I never got the verification link to sign up",
    ],
}
TEAMS = tuple(PROBLEMS)
CHOICES = tuple(f"a question about {team}" for team in TEAMS)  # what each message is compared with

OPENERS = {
    "train": ["Hi,", "Hello,", "Good morning,", "Dear support,", "Hey there,", ""],
    "eval": ["Hello team,", "Hi support,", "Good afternoon,", "To whom it may concern,", ""],
}
CLOSERS = {
    "train": ["Please help.", "Thanks.", "What should I do?", "This is urgent.", ""],
    "eval": ["Can you fix this?", "Thank you in advance.", "Any advice?", "I am really annoyed.", ""],
}


class SupportOptions(Options):
    n_train: int = Field(2000, gt=0)  # generated training messages
    n_eval: int = Field(400, gt=0)  # generated evaluation messages


class SupportTickets(Task):
    """Route generated customer-support messages to billing, shipping, technical or account."""

    name = "support_tickets"
    kind = "classification"
    main_metric = "accuracy"
    Options = SupportOptions

    def load(self, split: Literal["train", "eval"], seed: int) -> list[Example]:
        rng = random.Random(f"support-{split}-{seed}")
        count = self.options.n_train if split == "train" else self.options.n_eval
        half = 0 if split == "train" else 1  # disjoint halves of every problem list
        examples = []
        for _ in range(count):
            label = rng.randrange(len(TEAMS))
            problems = PROBLEMS[TEAMS[label]][half::2]
            text = " ".join(part for part in (rng.choice(OPENERS[split]), rng.choice(problems) + ".",
                                              rng.choice(CLOSERS[split])) if part)
            examples.append(Example(prompt=text, answers=(CHOICES[label],), choices=CHOICES, label=label))
        return examples

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return accuracy(predictions, examples)

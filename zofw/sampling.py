"""How batches are drawn, and what that means for privacy.

Two schemes, each paired with the neighbouring relation its accountants assume; the relation fixes
the sensitivity of a step's clipped sum (C: the bound on one example's clipped contribution):

- ``poisson`` (default): each example joins each batch independently with probability q = E|B| / n.
  Relation: add/remove one example. One example changes the sum by at most C. Every accountant composes
  Poisson-subsampled mechanisms; batch sizes vary and are never released.
- ``fixed_size``: each batch is b = E|B| examples drawn uniformly without replacement, independently at
  every step (not an epoch shuffle, which no accountant here models). Relation: replace one example
  (n is fixed). Replacing one example changes one clipped term: the sum moves by at most 2C. Composed by
  dp-accounting's RDP sampled-without-replacement event (Wang, Balle, Kasiviswanathan 2019), nothing else.

The coins and the draws come from the secret stream (a CSPRNG): amplification by subsampling holds only
if nobody can predict the batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from zofw.errors import BadInput
from zofw.privacy.secure import SecretStream

Scheme = Literal["poisson", "fixed_size"]
NEIGHBOURING: dict[str, str] = {"poisson": "add/remove-one", "fixed_size": "replace-one"}
# the sum's sensitivity over one example's contribution bound, under each scheme's relation
SENSITIVITY_FACTOR: dict[str, float] = {"poisson": 1.0, "fixed_size": 2.0}


@dataclass(frozen=True)
class Sampling:
    """The public facts about a run's batches that the noise scale and the accountant depend on."""

    scheme: Scheme
    sample_rate: float  # q = E|B| / n
    dataset_size: Optional[int] = None  # n (public: q and σ reveal it); needed for fixed-size batches

    @classmethod
    def of(cls, scheme: Scheme, expected_batch: float, dataset_size: int) -> "Sampling":
        """The sampling of a run that draws batches of (expected) size ``expected_batch`` from n examples."""
        if expected_batch > dataset_size:
            raise BadInput(f"train.expected_batch = {expected_batch:g} exceeds the {dataset_size} training examples")
        if scheme == "fixed_size" and expected_batch != int(expected_batch):
            raise BadInput(f"train.expected_batch = {expected_batch:g}: fixed_size sampling needs a whole batch size")
        return cls(scheme, expected_batch / dataset_size, dataset_size)

    @classmethod
    def coerce(cls, sampling: "Sampling | float") -> "Sampling":
        """A bare rate q means Poisson sampling at q."""
        return sampling if isinstance(sampling, Sampling) else cls("poisson", float(sampling))

    @property
    def neighbouring(self) -> str:
        return NEIGHBOURING[self.scheme]

    @property
    def sensitivity_factor(self) -> float:
        return SENSITIVITY_FACTOR[self.scheme]

    @property
    def batch_size(self) -> Optional[int]:
        """b for fixed-size batches; None for Poisson, whose sizes are random and private."""
        if self.scheme != "fixed_size" or self.dataset_size is None:
            return None
        return round(self.sample_rate * self.dataset_size)

    def sampler(self, source: SecretStream) -> "PoissonSampler | FixedSizeSampler":
        assert self.dataset_size is not None
        if self.scheme == "poisson":
            return PoissonSampler(self.dataset_size, self.sample_rate, source)
        assert self.batch_size is not None
        return FixedSizeSampler(self.dataset_size, self.batch_size, source)


class PoissonSampler:
    """Independent inclusion coins, one per example per step (add/remove-one; sensitivity C)."""

    def __init__(self, n: int, sample_rate: float, source: SecretStream) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample rate must be in (0, 1], got {sample_rate}")
        self.n, self.sample_rate, self.source = n, sample_rate, source

    def sample(self) -> list[int]:
        return np.flatnonzero(self.source.bernoulli(self.n, self.sample_rate)).tolist()


class FixedSizeSampler:
    """b distinct examples, uniform over all b-subsets, fresh at every step (replace-one; sensitivity 2C)."""

    def __init__(self, n: int, batch_size: int, source: SecretStream) -> None:
        if not 0 < batch_size <= n:
            raise ValueError(f"batch size must be in [1, {n}], got {batch_size}")
        self.n, self.batch_size, self.source = n, batch_size, source

    def sample(self) -> list[int]:
        # the first b swaps of a Fisher-Yates shuffle, driven by the secure stream: every b-subset is
        # equally likely; only swapped positions are stored, so a step costs O(b), not O(n)
        moved: dict[int, int] = {}
        chosen = []
        for i in range(self.batch_size):
            j = i + self.source.below(self.n - i)
            chosen.append(moved.get(j, j))
            moved[j] = moved.get(i, i)
        return sorted(chosen)

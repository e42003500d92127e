"""Secret randomness: batch membership and released noise come from a cryptographically secure stream.

Why not torch's generators: a CPU ``torch.Generator`` is mt19937 seeded through ``manual_seed``, which
keeps 32 bits; from a run's public outputs a scan of 2^32 seeds predicts every noise draw and every
batch. :class:`SecretStream` is SHAKE-256 (an extendable-output function, FIPS 202) run in counter mode
over a 256-bit key: each request hashes (key, counter) and the counter never repeats, so outputs are
independent and unpredictable without the key. The key comes from the operating system's CSPRNG
(``os.urandom``), lives only in this process's memory, and is never logged or written to disk.

A *reproducible* stream (:meth:`SecretStream.for_testing`) exists for tests only: its key is derived
from a number anyone can know, so a run that uses it is marked not private (see ``zofw.train``).
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import torch

_KEY_BYTES = 32  # 256 bits of key: far beyond any search
_TWO_53 = float(1 << 53)


class SecretStream:
    """SHAKE-256 in counter mode over a secret 256-bit key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else os.urandom(_KEY_BYTES)
        if len(self._key) != _KEY_BYTES:
            raise ValueError(f"a secret key has {_KEY_BYTES} bytes")
        self._counter = 0
        self._step = 0  # the step whose domain requests are drawn from (enter_step); 0: before training
        self.reproducible = key is not None

    @classmethod
    def for_testing(cls, seed: int) -> "SecretStream":
        """A stream anyone who knows ``seed`` can regenerate: for tests, never for a private run."""
        return cls(hashlib.sha256(b"zofw-insecure-test-key:" + str(int(seed)).encode()).digest())

    def __repr__(self) -> str:  # never show the key, even in a traceback or a debugger
        return f"SecretStream(reproducible={self.reproducible}, requests={self._counter})"

    def __getstate__(self):  # a secret is not pickled into checkpoints or worker processes by accident
        raise TypeError("a SecretStream cannot be pickled: its key must never leave this process")

    def enter_step(self, step: int) -> None:
        """Draw the requests that follow from step ``step``'s own domain: hash(key, step, counter). What a
        step draws then depends on the key and the step alone, not on how many requests came before, so
        a resumed run continues the same stream (and a reproducible test stream stays reproducible)."""
        self._step, self._counter = step, 0

    def random_bytes(self, count: int) -> bytes:
        domain = self._step.to_bytes(8, "little") + self._counter.to_bytes(16, "little")
        block = hashlib.shake_256(self._key + domain).digest(count)
        self._counter += 1
        return block

    def uint64(self, count: int) -> np.ndarray:
        return np.frombuffer(self.random_bytes(8 * count), dtype="<u8")

    def seed64(self) -> int:
        """A fresh 64-bit seed, e.g. to key a bulk generator for one step."""
        return int(self.uint64(1)[0])

    def uniform(self, count: int) -> np.ndarray:
        """float64 uniforms strictly inside (0, 1): 53 random bits, offset by half a step."""
        return ((self.uint64(count) >> np.uint64(11)).astype(np.float64) + 0.5) / _TWO_53

    def bernoulli(self, count: int, probability: float) -> np.ndarray:
        """``count`` independent coins with P(True) = ⌊probability·2^64⌋ / 2^64 (exact integer compare)."""
        if not 0 <= probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if probability == 1:
            return np.ones(count, dtype=bool)
        threshold = np.uint64(min(int(probability * 2.0**64), (1 << 64) - 1))
        return self.uint64(count) < threshold

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound): 64-bit draws above the largest multiple of ``bound`` are redrawn,
        so no value is favoured."""
        if not 0 < bound <= 1 << 64:
            raise ValueError(f"bound must be in [1, 2^64], got {bound}")
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            value = int(self.uint64(1)[0])
            if value < limit:
                return value % bound

    def normal(self, count: int) -> torch.Tensor:
        """float64 standard normals by Box–Muller from secure uniforms."""
        pairs = math.ceil(count / 2)
        u1, u2 = self.uniform(pairs), self.uniform(pairs)
        radius = np.sqrt(-2.0 * np.log(u1))
        angle = 2.0 * np.pi * u2
        values = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:count]
        return torch.from_numpy(values.copy())

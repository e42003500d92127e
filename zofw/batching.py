"""Batch-independent forwards: every example is computed in a shape that depends only on itself.

Why: padding a batch to its longest row lets one long example change the shapes, hence the kernels and
the rounding, of every other example's forward. Then adding or removing one example moves the *others'*
clipped values too, and the sensitivity is no longer C (measured: up to 1.44 in fp16 and 5.18 in bf16
at C = 10). So an example's row width is chosen from a public ladder by its own length alone, and each
forward sees exactly ``rows`` rows (missing rows are masked dummies): no kernel ever sees a shape chosen
by other examples. An example's value is then bitwise the same whatever else is in the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch


def on_device(values: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A CPU tensor copied to ``device`` without stalling the host: pinned, then copied asynchronously.

    A copy from pageable memory waits until the GPU has run everything queued before it; building every
    batch that way drains the queue before each forward. The pinned staging buffer comes from PyTorch's
    caching host allocator, which keeps it alive until the copy has finished.
    """
    if torch.device(device).type != "cuda" or values.device.type != "cpu":
        return values.to(device)  # already on a GPU (queued on its stream anyway), or bound for the CPU
    return values.pin_memory().to(device, non_blocking=True)


def width_ladder(limit: int) -> list[int]:
    """Public row widths: 16, 24, 32, 48, 64, 96, 128, … (powers of two and 1.5×), capped at ``limit``.

    Few rungs below 16 on purpose: each rung an example can land on is one more forward per step."""
    widths, power = [], 16
    while power < limit:
        widths.extend(w for w in (power, power * 3 // 2) if w < limit)
        power *= 2
    return sorted(set(widths)) + [limit]


def bucket_width(length: int, limit: Optional[int]) -> int:
    """The smallest public width that holds ``length`` tokens (``limit``: the model's maximum)."""
    limit = limit or max(length, 1)
    for width in width_ladder(max(limit, 1)):
        if width >= length:
            return width
    raise ValueError(f"an item of {length} tokens exceeds the maximum of {limit}")


Shape = tuple[int, ...]  # (rows, *widths): the batch dimension, then each bucketed size of the item


@dataclass(frozen=True)
class Microbatch:
    indices: tuple[int, ...]  # positions in the batch, at most ``rows`` of them
    shape: Shape  # (rows, *widths): fixed rows, widths from the public ladder


def microbatches(sizes: Sequence[tuple[int, ...]], rows: int, limit: Optional[int]) -> list[Microbatch]:
    """Group items by their own bucketed sizes, in batch order, into forwards of exactly ``rows`` rows.

    ``sizes[i]`` are item i's own sizes (e.g. its tokens, and its target tokens); each is rounded up
    the public ladder, so the group an item joins and the shape it is computed in depend on it alone.
    """
    buckets: dict[tuple[int, ...], list[int]] = {}
    for index, own in enumerate(sizes):
        buckets.setdefault(tuple(bucket_width(size, limit) for size in own), []).append(index)
    groups = []
    for widths in sorted(buckets):
        members = buckets[widths]
        groups.extend(Microbatch(tuple(members[i:i + rows]), (rows, *widths)) for i in range(0, len(members), rows))
    return groups


def fixed_shape_losses(items: Sequence[Any], rows: int, sizes: Callable[[Any], tuple[int, ...]],
                       limit: Optional[int], losses: Callable[[Sequence[Any], Shape], torch.Tensor]) -> torch.Tensor:
    """Per-example losses (b,) computed microbatch by microbatch in fixed public shapes."""
    if not items:
        return torch.zeros(0)
    out: Optional[torch.Tensor] = None
    for group in microbatches([sizes(item) for item in items], rows, limit):
        values = losses([items[i] for i in group.indices], group.shape)[:len(group.indices)]
        if out is None:
            out = torch.empty(len(items), dtype=values.dtype, device=values.device)
        first, count = group.indices[0], len(group.indices)
        if group.indices == tuple(range(first, first + count)):  # the common case: no index tensor to copy
            out[first:first + count] = values
        else:
            out.index_copy_(0, on_device(torch.tensor(group.indices), values.device), values)
    assert out is not None
    return out


def default_rows(expected_batch: float) -> int:
    """Rows per forward when the recipe leaves train.microbatch at 0: the expected batch, rounded up."""
    return max(1, math.ceil(expected_batch))

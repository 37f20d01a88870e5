"""Cutting writes and look-ups into the batches a CRM accepts in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in order, ``size`` at a time."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def unique_batches(refs: Sequence[str], size: int) -> list[list[int]]:
    """Positions of ``refs`` in batches of at most ``size``, never the same ref twice in one batch.

    CRMs reject (or silently merge) a batch that names one record twice; a second write to the same
    record goes into the next batch, so the last one still wins.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    seen: set[str] = set()
    for i, ref in enumerate(refs):
        if len(current) >= size or ref in seen:
            batches.append(current)
            current, seen = [], set()
        current.append(i)
        seen.add(ref)
    if current:
        batches.append(current)
    return batches

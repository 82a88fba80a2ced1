"""Merging several rankings of the same replies into one consensus order (ranked pairs, as upstream)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def _has_cycle(pairs: list[tuple[T, T]]) -> bool:
    """Peel off candidates that never win; anything left over sits on a cycle."""
    remaining = list(pairs)
    while remaining:
        winners = {a for a, _ in remaining}
        losers_only = {b for _, b in remaining} - winners
        if not losers_only:
            return True
        remaining = [(a, b) for a, b in remaining if b not in losers_only]
    return False


def ranked_pairs(rankings: Sequence[Sequence[T]]) -> list[T]:
    """The consensus order (best first) of the items every ranking shares; [] if fewer than two are shared."""
    if not rankings:
        return []
    common = set(rankings[0]).intersection(*map(set, rankings[1:]))
    if len(common) < 2:
        return []
    lists = [[item for item in ranking if item in common] for ranking in rankings]
    candidates = sorted(common, key=str)
    wins = {(a, b): 0 for a in candidates for b in candidates if a != b}
    for ranking in lists:
        position = {item: i for i, item in enumerate(ranking)}
        for a, b in wins:
            if position[a] < position[b]:
                wins[(a, b)] += 1
    margins = [((a, b), wins[(a, b)] - wins[(b, a)]) for a in candidates for b in candidates if a != b]
    ordered = sorted((m for m in margins if m[1] >= 0), key=lambda m: m[1], reverse=True)

    locked: list[tuple[T, T]] = []
    for pair, _margin in ordered:
        if not _has_cycle([*locked, pair]):
            locked.append(pair)

    result: list[T] = []
    while locked:
        if len(locked) == 1:
            result.extend(locked[0])
            break
        losers = {b for _, b in locked}
        winner = next(a for a, _ in locked if a not in losers)
        result.append(winner)
        locked = [(a, b) for a, b in locked if a != winner and b != winner]
    # Candidates that no locked pair mentions any more (all their pairs were removed) come last, in id order.
    result.extend(c for c in candidates if c not in result)
    return result

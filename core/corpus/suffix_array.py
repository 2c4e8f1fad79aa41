"""The suffix array of a token sequence: every suffix's start, in the suffixes' sorted order.

Built by prefix doubling in torch (Manber and Myers; the group ranks of Larsson and Sadakane): sort
by the first token, then by the first 2, 4, 8… tokens. A round sorts only the suffixes whose group
still holds more than one (a suffix alone in its group is placed for good), by one int64 key: its
group's rank, then the rank of the suffix k tokens ahead. A suffix's rank is the place of its
group's first member in the order, so a round leaves every other rank as it was. Rounds are log2
of the longest repeat; on text, most suffixes are placed after the first few. A suffix that ends
sorts before its extensions.
"""
from __future__ import annotations

import torch


def build_suffix_array(tokens: torch.Tensor) -> torch.Tensor:
    """int32 positions of `tokens`' (a 1-D integer tensor's) suffixes in sorted order."""
    n = int(tokens.numel())
    if n == 0:
        return torch.empty(0, dtype=torch.int32)
    order = torch.argsort(tokens.to(torch.int64), stable=True)
    rank = torch.empty(n, dtype=torch.int64)
    rank[order] = group_heads(tokens.to(torch.int64)[order])
    unsorted = unsettled_slots(rank[order])  # slots of `order` whose group has several members
    k = 1
    while unsorted.numel() and k < n:
        members = order[unsorted]
        # The rank k ahead, one past the largest (n) for a suffix that ends before it: a shorter suffix sorts
        # first. Ranks are below n, so the key fits int64 for any n a machine can hold.
        ahead = members + k
        behind = torch.where(ahead < n, rank[ahead.clamp(max=n - 1)], torch.full_like(ahead, -1)) + 1
        key = rank[members] * (n + 1) + behind
        resorted = torch.argsort(key)
        members, key = members[resorted], key[resorted]
        order[unsorted] = members  # the same slots: the group rank, first in the key, keeps them there
        # New ranks: the slot of the first member with the same key (the groups' slots run in order).
        new_group = torch.ones(members.numel(), dtype=torch.bool)
        new_group[1:] = key[1:] != key[:-1]
        heads = torch.where(new_group, unsorted, torch.zeros_like(unsorted))
        rank[members] = torch.cummax(heads, 0).values
        still = unsettled_slots(rank[members])
        unsorted = unsorted[still]
        k *= 2
    return order.to(torch.int32)


def group_heads(sorted_keys: torch.Tensor) -> torch.Tensor:
    """For keys in sorted order, each one's rank: the index of the first key equal to it."""
    new_group = torch.ones(sorted_keys.numel(), dtype=torch.bool)
    new_group[1:] = sorted_keys[1:] != sorted_keys[:-1]
    slots = torch.arange(sorted_keys.numel())
    return torch.cummax(torch.where(new_group, slots, torch.zeros_like(slots)), 0).values


def unsettled_slots(ranks_in_order: torch.Tensor) -> torch.Tensor:
    """The indices (into the given run of ranks, in order) whose rank is shared with a neighbour."""
    same_next = torch.zeros(ranks_in_order.numel(), dtype=torch.bool)
    same_next[:-1] = ranks_in_order[1:] == ranks_in_order[:-1]
    same_prev = torch.zeros_like(same_next)
    same_prev[1:] = same_next[:-1]
    return torch.nonzero(same_next | same_prev, as_tuple=True)[0]

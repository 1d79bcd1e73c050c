"""Deterministic train/eval/test assignment for sources that carry no split of their own.

Image datasets are split by subject (person or character) so that no face is ever in two splits:
a model evaluated on a person it trained on looks better than it is. Kaggle's train.csv has no
subjects, so its rows are split by a hash of their pixels (identical images land together).
"""
import hashlib
from typing import Dict, Mapping, Sequence

from contract.data import SPLITS


def _stable_hash(seed: int, text: str) -> bytes:
    return hashlib.sha256(f"{seed}:{text}".encode()).digest()


def assign_subjects(example_counts: Mapping[str, int], fractions: Sequence[float],
                    seed: int = 0) -> Dict[str, str]:
    """Maps each subject to a split so that splits hold about `fractions` of the examples.

    Subjects are taken in a seeded hash order; test and eval are filled first, each up to the
    subject that brings it closest to its share, and train takes the rest. With 3 or more subjects
    every split with a non-zero share gets at least one (FERG has only 6 characters: a plain
    80/10/10 cut of equal subjects would leave test empty). With fewer, train comes first.
    """
    order = sorted(example_counts, key=lambda s: (_stable_hash(seed, s), s))
    total = sum(example_counts.values())
    shares = dict(zip(SPLITS, fractions))
    assignment = {}
    remaining = list(order)
    to_fill = [s for s in reversed(SPLITS[1:]) if shares[s] > 0]  # test, then eval
    for position, split in enumerate(to_fill):
        target = shares[split] * total
        reserve = len(to_fill) - position  # keep one subject for train and each split still to fill
        taken = 0
        while len(remaining) > reserve:
            count = example_counts[remaining[0]]
            if taken and abs(taken + count - target) >= abs(taken - target):
                break
            assignment[remaining.pop(0)] = split
            taken += count
    for subject in remaining:
        assignment[subject] = SPLITS[0]
    return assignment


def split_by_content(content: bytes, fractions: Sequence[float], seed: int = 0) -> str:
    """The split of a record without a subject, from a seeded hash of its content."""
    digest = hashlib.sha256(b"%d:" % seed + content).digest()
    point = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    cumulative = 0.0
    for split, share in zip(SPLITS, fractions):
        cumulative += share
        if point < cumulative:
            return split
    return SPLITS[-1]

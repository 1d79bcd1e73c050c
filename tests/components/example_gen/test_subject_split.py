"""Subject-disjoint, deterministic split assignment."""
import collections
import os

import pytest

from components.example_gen.subject_split import assign_subjects, split_by_content


@pytest.mark.parametrize("n_subjects,per_subject", [(3, 5), (6, 98), (10, 21), (123, 8)])
def test_every_split_gets_a_subject_and_shares_are_close(n_subjects, per_subject):
    counts = {f"S{i:03d}": per_subject + i % 3 for i in range(n_subjects)}
    assignment = assign_subjects(counts, (0.8, 0.1, 0.1))
    assert set(assignment) == set(counts)
    examples = collections.Counter()
    for subject, split in assignment.items():
        examples[split] += counts[subject]
    assert set(examples) == {"train", "eval", "test"}
    if n_subjects >= 100:
        total = sum(counts.values())
        assert abs(examples["eval"] / total - 0.1) < 0.02 and abs(examples["test"] / total - 0.1) < 0.02


def test_assignment_is_deterministic_and_seeded():
    counts = {f"S{i:03d}": 10 for i in range(40)}
    assert assign_subjects(counts, (0.8, 0.1, 0.1)) == assign_subjects(dict(reversed(counts.items())), (0.8, 0.1, 0.1))
    assert assign_subjects(counts, (0.8, 0.1, 0.1), seed=1) != assign_subjects(counts, (0.8, 0.1, 0.1))


def test_few_subjects_fill_train_first():
    assert assign_subjects({"A": 5}, (0.8, 0.1, 0.1)) == {"A": "train"}
    assert sorted(assign_subjects({"A": 5, "B": 5}, (0.8, 0.1, 0.1)).values()) == ["eval", "train"]
    assert set(assign_subjects({"A": 5, "B": 5, "C": 5}, (1.0, 0.0, 0.0)).values()) == {"train"}


def test_content_split_keeps_shares_and_sends_identical_content_together():
    splits = collections.Counter(split_by_content(os.urandom(32), (0.8, 0.1, 0.1)) for _ in range(20_000))
    assert abs(splits["train"] / 20_000 - 0.8) < 0.015 and abs(splits["test"] / 20_000 - 0.1) < 0.01
    assert len({split_by_content(b"same face", (0.8, 0.1, 0.1)) for _ in range(5)}) == 1

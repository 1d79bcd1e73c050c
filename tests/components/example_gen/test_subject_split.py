"""Subject-disjoint, deterministic split assignment."""
import collections

import numpy as np
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


def test_content_split_keeps_the_shares_for_a_seed():
    rng = np.random.default_rng(0)
    contents = [rng.bytes(32) for _ in range(20_000)]
    for seed in (0, 1):
        splits = collections.Counter(split_by_content(c, (0.8, 0.1, 0.1), seed=seed) for c in contents)
        assert abs(splits["train"] / 20_000 - 0.8) < 0.015 and abs(splits["test"] / 20_000 - 0.1) < 0.01
    moved = sum(split_by_content(c, (0.8, 0.1, 0.1), 0) != split_by_content(c, (0.8, 0.1, 0.1), 1) for c in contents)
    assert moved > 5_000  # another seed is another split, not a relabelling of a few rows


def test_duplicate_rows_of_a_csv_without_usage_land_in_one_split(data_root, ingest):
    """Kaggle's train.csv holds the same face more than once: no copy may sit in another split."""
    faces = [data_root.text(data_root.pixels()) for _ in range(40)]
    rows = [f"{i % 7},{faces[i % 40]}" for i in range(120)]  # every face three times
    data_root.write("train.csv", "emotion,pixels\n" + "\n".join(rows) + "\n")
    run = ingest(data_root.path)
    split_of = collections.defaultdict(set)
    for split, examples in run.examples.items():
        for e in examples:
            split_of[tuple(e["pixels"])].add(split)
    assert len(split_of) == 40 and all(len(splits) == 1 for splits in split_of.values())
    assert sum(len(v) for v in run.examples.values()) == 120

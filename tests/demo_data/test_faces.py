"""render_faces: shapes, determinism, identities, and expressions that can be told apart."""
import numpy as np
import pytest

from contract.data import EMOTIONS
from deep_emotion.demo_data import CONTEMPT, render_faces


@pytest.mark.parametrize("size", [48, 100, 256])
def test_faces_are_uint8_squares_of_the_requested_size_using_the_intensity_range(size):
    faces = render_faces(np.arange(14) % 7, seed=0, size=size)
    assert faces.shape == (14, size, size) and faces.dtype == np.uint8
    assert faces.min() < 40 and faces.max() > 215  # dark features and bright highlights
    assert 60 < faces.mean() < 190


def test_same_seed_same_bytes_other_seed_other_faces_and_prefixes_are_stable():
    labels = np.random.default_rng(0).integers(0, 7, 300)
    faces = render_faces(labels, seed=7)
    assert render_faces(labels, seed=7).tobytes() == faces.tobytes()
    assert render_faces(labels[:123], seed=7).tobytes() == faces[:123].tobytes()
    other = render_faces(labels, seed=8)
    assert np.mean(other != faces) > 0.9
    assert render_faces(labels, seed=[7, 1]).tobytes() != faces.tobytes()


def test_a_subject_keeps_its_appearance_across_seeds_and_expressions():
    """Identify 30 subjects in a second, differently seeded set by nearest neighbour on the face."""
    subjects = np.arange(30)
    gallery = render_faces(np.full(30, EMOTIONS.index("neutral")), seed=1, subject_ids=subjects,
                           nuisance=0)
    probes = render_faces(np.full(30, EMOTIONS.index("happy")), seed=2, subject_ids=subjects,
                          nuisance=0)
    face = (slice(None), slice(14, 40), slice(14, 34))  # inside the head, clear of the background
    a = gallery[face].reshape(30, -1).astype(np.float32)
    b = probes[face].reshape(30, -1).astype(np.float32)
    distance = np.abs(b[:, None, :] - a[None, :, :]).mean(-1)
    assert np.mean(distance.argmin(axis=1) == subjects) >= 0.9
    # Without subject ids each face is a new person: same seed and expression, other people.
    fresh = render_faces(np.full(30, EMOTIONS.index("neutral")), seed=1, nuisance=0)[face]
    fresh_distance = np.abs(fresh.reshape(30, -1).astype(np.float32) - a).mean(-1)
    assert fresh_distance.mean() > 1.5 * np.diag(distance).mean()


def test_every_pair_of_expressions_changes_the_face_visibly():
    """The same 200 faces (same seed: same person, pose, light, noise) drawn with each expression:
    on 95% of them, any two FER2013 expressions differ by > 20 grey levels in >= 8 pixels."""
    faces = np.stack([render_faces(np.full(200, k), seed=5) for k in range(len(EMOTIONS))])
    faces = faces.astype(np.int16)
    changed = (np.abs(faces[:, None] - faces[None]) > 20).sum(axis=(-1, -2))  # [7, 7, 200]
    fifth_percentile = np.percentile(changed, 5, axis=-1)
    off_diagonal = ~np.eye(len(EMOTIONS), dtype=bool)
    assert fifth_percentile[off_diagonal].min() >= 8, fifth_percentile
    assert np.all(changed[~off_diagonal] == 0)


def test_contempt_is_drawn_and_differs_from_neutral():
    neutral = render_faces(np.full(100, EMOTIONS.index("neutral")), seed=3).astype(np.int16)
    contempt = render_faces(np.full(100, CONTEMPT), seed=3).astype(np.int16)
    assert np.median((np.abs(contempt - neutral) > 20).sum(axis=(-1, -2))) >= 10


def test_lab_nuisance_is_steadier_than_in_the_wild():
    """nuisance scales pose and lighting: the per-pixel spread of one face over many draws."""
    labels, subjects = np.full(200, 6), np.zeros(200, dtype=int)
    lab = render_faces(labels, seed=4, subject_ids=subjects, nuisance=0.2).astype(np.float32)
    wild = render_faces(labels, seed=4, subject_ids=subjects, nuisance=1.0).astype(np.float32)
    centre = (slice(None), slice(12, 36), slice(12, 36))
    assert lab[centre].std(axis=0).mean() < 0.6 * wild[centre].std(axis=0).mean()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="label 9 is not an expression id"):
        render_faces(np.array([0, 9]), seed=0)
    with pytest.raises(ValueError, match="subject_ids has shape"):
        render_faces(np.array([0, 1]), seed=0, subject_ids=np.array([1]))
    with pytest.raises(ValueError, match="1-D"):
        render_faces(np.zeros((2, 2), dtype=int), seed=0)
    assert render_faces(np.array([], dtype=int), seed=0).shape == (0, 48, 48)

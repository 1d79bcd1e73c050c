"""Shared inputs for the trainer tests: normalised synthetic faces, as Transform would feed them."""
import numpy as np
import pytest

from deep_emotion.demo_data import render_faces


@pytest.fixture(scope="session")
def faces():
    """(images float32 [64, 48, 48, 1] z-scored, labels int64 [64]): every class, 9-10 faces each."""
    labels = np.arange(64) % 7
    pixels = render_faces(labels, seed=0).astype(np.float32)
    images = ((pixels - pixels.mean()) / pixels.std())[..., None]
    return images, labels.astype(np.int64)

"""The benchmark's faces, numpy only: both sides of the HLO hand-over (TF here, jaxlib on the GPU
machine) must draw exactly the same batches, so there is one function for it."""
import numpy as np

from contract.data import NUM_CLASSES
from deep_emotion.demo_data.faces import render_faces

FER2013_TRAIN_SIZE = 28_709


def synthetic_faces(count, seed=0):
    """(images float32 [count, 48, 48, 1] z-scored with their own mean and std, labels int64 [count])."""
    labels = np.random.default_rng(seed).integers(0, NUM_CLASSES, count)
    pixels = render_faces(labels, seed).astype(np.float32)
    images = (pixels - pixels.mean()) / pixels.std()
    return images[..., None], labels.astype(np.int64)

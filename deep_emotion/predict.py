"""The served model's answers for photos, videos, folders or a FER2013-style CSV (`deep-emotion predict`).

JSON lines on stdout, in input order:
- a photo: one line per face the face stage finds (faces/: box, eyes, detector score, the emotion
  and probabilities of its FER2013-framed crop), or one line saying no face was found;
- a 48x48 image, or any image with detect=False: one line for the whole image, which goes to the
  model's `serving_images` signature as a TF Serving client would send it;
- a video: one line per frame read (every frame, or every `every`-th), with its index, time and
  the faces in it (an empty list when there are none);
- a CSV row with `pixels`: one line, through `serving_default`.
Crops go to `serving_default` as canonical tf.Examples, in batches. An input that cannot be read,
or that is over the image budgets, gets a line with "error" and the rest go on.
"""
import csv
import io
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from contract import data as dc

TF_DECODABLE = {"PNG", "JPEG", "GIF", "BMP"}  # what tf.io.decode_image reads
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
BATCH = 64


class Classifier:
    """A served model's two image entry points, batched: canonical pixels (serving_default) and
    encoded images (serving_images)."""

    def __init__(self, model_dir: str):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        self._tf = tf
        self.model = tf.saved_model.load(model_dir)
        self._examples = self.model.signatures["serving_default"]
        self._images = self.model.signatures["serving_images"]

    def pixels(self, crops: List[np.ndarray]) -> List[dict]:
        """One answer per uint8 [48, 48] crop."""
        tf = self._tf
        answers = []
        for start in range(0, len(crops), BATCH):
            batch = crops[start:start + BATCH]
            examples = [tf.train.Example(features=tf.train.Features(feature={dc.PIXELS: tf.train.Feature(
                int64_list=tf.train.Int64List(value=np.asarray(c, np.int64).reshape(-1)))})).SerializeToString()
                for c in batch]
            answers += _answers(self._examples(examples=tf.constant(examples)), len(batch))
        return answers

    def examples(self, serialized: List[bytes]) -> List[dict]:
        return [a for start in range(0, len(serialized), BATCH)
                for a in _answers(self._examples(examples=self._tf.constant(serialized[start:start + BATCH])),
                                  len(serialized[start:start + BATCH]))]

    def encoded(self, images: List[bytes]) -> List[dict]:
        return [a for start in range(0, len(images), BATCH)
                for a in _answers(self._images(image_bytes=self._tf.constant(images[start:start + BATCH])),
                                  len(images[start:start + BATCH]))]


def _answers(outputs, n: int) -> List[dict]:
    outputs = {k: v.numpy() for k, v in outputs.items()}
    answers = []
    for i in range(n):
        answer = {"emotion": outputs["class_name"][i].decode(), "class_id": int(outputs["class_id"][i]),
                  "probabilities": {e: round(float(p), 6) for e, p in zip(dc.EMOTIONS, outputs["probabilities"][i])}}
        if "uncertain" in outputs:  # models exported before abstention have no such output
            answer["uncertain"] = bool(outputs["uncertain"][i])
        answers.append(answer)
    return answers


def _open_image(path: Path, max_pixels: int, max_bytes: int):
    """(Pillow image, file bytes), refused before decoding when over the budgets."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"refused: {size:,} bytes, over the image byte budget of {max_bytes:,}")
    data = path.read_bytes()
    image = Image.open(io.BytesIO(data))  # reads the header only
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(f"refused: {width}x{height} = {width * height:,} pixels, over the image pixel budget "
                         f"of {max_pixels:,}")
    return image, data


def _encoded_for_tf(image, data: bytes) -> bytes:
    """The bytes TensorFlow can decode: the file itself, or a lossless PNG of it (TIFF, WebP...)."""
    if image.format in TF_DECODABLE:
        return data
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _faces_in(gray: np.ndarray, thorough: bool):
    """(face, crop) for every face found: the one face stage (faces/); thorough for photos."""
    from faces import crop, detect  # pylint: disable=import-outside-toplevel

    return [(face, crop.fer_crop(gray, face)) for face in detect.find_faces(gray, thorough)]


def _photo(classifier: Classifier, name: str, path: Path, detect: bool, max_pixels: int,
           max_bytes: int) -> Iterator[dict]:
    try:
        image, data = _open_image(path, max_pixels, max_bytes)
        if not detect or image.size == (dc.IMAGE_SIZE, dc.IMAGE_SIZE):
            encoded = _encoded_for_tf(image, data)
            yield {"input": name, **classifier.encoded([encoded])[0]}
            return
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    except Exception as error:  # pylint: disable=broad-except  # an unreadable input gets its own line
        yield {"input": name, "error": f"cannot read image: {error}"}
        return
    found = _faces_in(gray, thorough=True)
    if not found:
        yield {"input": name, "faces": 0, "face": None,
               "no_face": f"no face found in the {gray.shape[1]}x{gray.shape[0]} image"}
        return
    for i, ((face, _), answer) in enumerate(zip(found, classifier.pixels([c for _, c in found]))):
        yield {"input": name, "faces": len(found), "face": i, **face.to_json(), **answer}


def _video(classifier: Classifier, name: str, path: Path, every: int,
           progress: Optional[Callable[[int], None]]) -> Iterator[dict]:
    from faces import video  # pylint: disable=import-outside-toplevel

    pending: List[Tuple[int, float, list]] = []  # frames waiting for a batch, with their faces

    def flush():
        crops = [c for _, _, found in pending for _, c in found]
        answers = iter(classifier.pixels(crops)) if crops else iter(())
        for index, seconds, found in pending:
            yield {"input": name, "frame": index, "time": round(seconds, 4),
                   "faces": [{**face.to_json(), **next(answers)} for face, _ in found]}
        pending.clear()

    try:
        for index, seconds, gray in video.read_frames(str(path), every):
            pending.append((index, seconds, _faces_in(gray, thorough=False)))
            if progress:
                progress(1)
            if sum(len(f) for _, _, f in pending) >= BATCH or len(pending) >= BATCH:
                yield from flush()
    except video.VideoError as error:
        yield from flush()
        yield {"input": name, "error": str(error)}
        return
    yield from flush()


def _csv_examples(path: Path) -> Iterator[Tuple[str, object]]:
    """(input name, serialized tf.Example or an error message) per data row of a CSV with `pixels`."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.example_gen.fer2013_csv import parse_pixels  # pylint: disable=import-outside-toplevel

    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip().lower() for c in next(reader, [])]
        if dc.PIXELS not in header:
            raise ValueError(f"{path}: no 'pixels' column in the header {header}")
        column = header.index(dc.PIXELS)
        for fields in reader:
            name = f"{path}:{reader.line_num}"
            if not fields:
                continue
            try:
                pixels = parse_pixels(fields[column] if column < len(fields) else "")
            except ValueError as e:
                yield name, f"line {reader.line_num}: {e}"
                continue
            example = tf.train.Example(features=tf.train.Features(feature={dc.PIXELS: tf.train.Feature(
                int64_list=tf.train.Int64List(value=np.asarray(pixels)))}))
            yield name, example.SerializeToString()


def _csv(classifier: Classifier, path: Path) -> Iterator[dict]:
    rows: List[Tuple[str, bytes]] = []

    def flush():
        for (name, _), answer in zip(rows, classifier.examples([e for _, e in rows])):
            yield {"input": name, **answer}
        rows.clear()

    for name, payload in _csv_examples(path):
        if isinstance(payload, str):
            yield from flush()
            yield {"input": name, "error": payload}
            continue
        rows.append((name, payload))
        if len(rows) >= BATCH:
            yield from flush()
    yield from flush()


def expand(paths) -> Iterator[Path]:
    """The files to answer for: folders become their images and videos, sorted."""
    from faces import video  # pylint: disable=import-outside-toplevel

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.suffix.lower() in IMAGE_SUFFIXES or video.is_video(str(p)))
        else:
            yield path


def predict_lines(model_dir: str, paths: List[str], detect: bool = True, every: int = 1,
                  max_pixels: int = dc.MAX_IMAGE_PIXELS, max_bytes: int = dc.MAX_IMAGE_BYTES,
                  progress: Optional[Callable[[str, int], Callable[[int], None]]] = None) -> Iterator[dict]:
    """The answer lines for every input, in input order (see the module docstring).

    progress(name, frames) -> advance(n): called once per video, for a progress bar.
    """
    from faces import video  # pylint: disable=import-outside-toplevel

    classifier = Classifier(model_dir)
    for path in expand(paths):
        name = str(path)
        if path.suffix.lower() == ".csv":
            yield from _csv(classifier, path)
        elif video.is_video(name):
            advance = progress(name, video.frame_count(name) // every) if progress else None
            yield from _video(classifier, name, path, every, advance)
        else:
            yield from _photo(classifier, name, path, detect, max_pixels, max_bytes)

"""The served model's answer for images, folders or a FER2013-style CSV (`deep-emotion predict`).

One JSON line per input on stdout, as a TF Serving client would get them: images go through the
model's `serving_images` signature (encoded bytes, any size, gray or colour), CSV rows through
`serving_default` (tf.Examples). TIFF (JAFFE) and other formats TensorFlow cannot decode are
re-encoded as PNG with Pillow first, losslessly.
"""
import csv
import io
from pathlib import Path
from typing import Iterator, List, Tuple

from contract import data as dc

TF_DECODABLE = {"PNG", "JPEG", "GIF", "BMP"}  # what tf.io.decode_image reads
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
BATCH = 64


def _image_bytes(path: Path) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        if image.format in TF_DECODABLE:
            return path.read_bytes()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def _csv_examples(path: Path) -> Iterator[Tuple[str, object]]:
    """(input name, serialized tf.Example or an error message) per data row of a CSV with `pixels`."""
    import numpy as np
    import tensorflow as tf

    from components.example_gen.fer2013_csv import parse_pixels

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


def _inputs(paths) -> Iterator[Tuple[str, str, object]]:
    """(kind, name, payload-or-error) for every input: kind 'image' or 'example'."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
                yield from _inputs([file])
        elif path.suffix.lower() == ".csv":
            for name, payload in _csv_examples(path):
                yield "example", name, payload
        else:
            try:
                yield "image", str(path), _image_bytes(path)
            except Exception as e:  # unreadable or not an image: reported on its own line
                yield "image", str(path), f"cannot read image: {e}"


def _answer(name: str, outputs: dict, i: int) -> dict:
    probabilities = outputs["probabilities"][i]
    answer = {"input": name, "emotion": outputs["class_name"][i].decode(), "class_id": int(outputs["class_id"][i]),
              "probabilities": {e: round(float(p), 6) for e, p in zip(dc.EMOTIONS, probabilities)}}
    if "uncertain" in outputs:  # models exported before abstention have no such output
        answer["uncertain"] = bool(outputs["uncertain"][i])
    return answer


def predict_lines(model_dir: str, paths: List[str]) -> Iterator[dict]:
    """One answer dict per input (or {"input", "error"}), in input order, batched per signature."""
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    signatures = {"image": (model.signatures["serving_images"], "image_bytes"),
                  "example": (model.signatures["serving_default"], "examples")}
    pending: List[Tuple[str, str, bytes]] = []  # one kind at a time, so answers keep input order

    def flush():
        if pending:
            function, argument = signatures[pending[0][0]]
            outputs = {k: v.numpy() for k, v in function(**{argument: tf.constant([p for _, _, p in pending])}).items()}
            yield from (_answer(name, outputs, i) for i, (_, name, _) in enumerate(pending))
        pending.clear()

    for kind, name, payload in _inputs(paths):
        if isinstance(payload, str):
            yield from flush()
            yield {"input": name, "error": payload}
            continue
        if pending and (pending[0][0] != kind or len(pending) >= BATCH):
            yield from flush()
        pending.append((kind, name, payload))
    yield from flush()

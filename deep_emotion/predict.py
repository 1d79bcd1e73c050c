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
or that is over the image budgets, gets a line with "error" and the rest go on; a CSV that cannot be
read as one gets a line for the file, after the lines of the rows read before.

Photos are taken as they are shown: an EXIF orientation (phone photos store the sensor's pixels and
a tag that says how to turn them) is applied before anything else, so boxes and eyes are in the
upright picture's pixels. `serving_images` decodes the stored pixels and ignores EXIF (TF Serving
runs no Python): a photo with an orientation is sent to it re-encoded upright, and TF Serving's own
clients must send upright images. Gray levels come from faces.gray (16-bit and float images scaled,
as ingestion scales them).
"""
import csv
import io
import math
import os
import re
import sys
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
        # The budgets the model was exported with (models from before had none: the defaults).
        self.max_image_pixels = int(getattr(self.model, "max_image_pixels", dc.MAX_IMAGE_PIXELS))
        self.max_image_bytes = int(getattr(self.model, "max_image_bytes", dc.MAX_IMAGE_BYTES))

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


def _file_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refused over the byte budget: by the size the file system gives, and by what
    comes (a pipe or FIFO says 0), never reading more than max_bytes + 1."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"refused: {size:,} bytes, over the image byte budget of {max_bytes:,}")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"refused: more than {max_bytes:,} bytes came, over the image byte budget of {max_bytes:,}")
    if not data:
        raise ValueError("empty file (0 bytes)")
    return data


# The formats people most often take for images Pillow reads, told by their first bytes, for the
# error line of a file Pillow cannot identify (its own message names a BytesIO, not the file).
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_NOT_SUPPORTED = "which is not supported: convert it to JPEG or PNG"


def _format_by_content(data: bytes) -> str:
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return f"HEIC/HEIF (iPhone photos), {_NOT_SUPPORTED}"
        if brand in (b"avif", b"avis"):
            return f"AVIF, {_NOT_SUPPORTED}"
        return f"an ISO media file of brand {brand.decode('ascii', 'replace')!r} (MP4, MOV...), not an image"
    for magic, what in ((b"%PDF", "PDF"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "gzip data"),
                        (b"\x1aE\xdf\xa3", "Matroska/WebM video"), (b"<svg", f"SVG, {_NOT_SUPPORTED}")):
        if data.startswith(magic):
            return what
    head = data[:512]
    try:
        head.decode("utf-8")
        return f"text ({head[:24].decode('utf-8', 'replace')!r}...)"
    except UnicodeDecodeError:
        return f"unknown, its first bytes are {head[:12].hex(' ')}"


def _open_image(path: Path, max_pixels: int, max_bytes: int):
    """(Pillow image, file bytes), refused before decoding when over the budgets."""
    from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel

    data = _file_bytes(path, max_bytes)
    # Pillow's own bomb check (a warning, then an error at twice its 89 MP default) would fire first
    # with its own numbers; ours, the served model's budget, is checked on the header just below.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read (format by content: "
                         f"{_format_by_content(data)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(f"refused: {width}x{height} = {width * height:,} pixels, over the image pixel budget "
                         f"of {max_pixels:,}")
    return image, data


def _upright(image):
    """The image as it is shown: turned as its EXIF orientation says (the same image when it has none)."""
    from PIL import ImageOps  # pylint: disable=import-outside-toplevel

    return image if image.getexif().get(0x0112, 1) == 1 else ImageOps.exif_transpose(image)


def _encoded_within_model_budgets(image, data: Optional[bytes], classifier: Classifier) -> bytes:
    """What --no-detect sends to serving_images: the image as _encoded_for_tf encodes it when the
    model's own budgets take that (a GIF's pixels are its frames' together, as the model counts
    them), else a gray PNG of its first frame box-reduced by a whole factor until it fits both. A
    --max-image-pixels or --max-image-bytes above the model's then holds with --no-detect too (the
    model refused such an image); the model resizes the copy to 48x48 as it would the image."""
    from faces.gray import to_gray  # pylint: disable=import-outside-toplevel

    encoded = _encoded_for_tf(image, data)
    frames = getattr(image, "n_frames", 1) if encoded is data else 1  # a converted image is one frame
    max_pixels, max_bytes = classifier.max_image_pixels, classifier.max_image_bytes
    if image.width * image.height * frames <= max_pixels and len(encoded) <= max_bytes:
        return encoded
    if frames > 1:
        image.seek(0)
    gray = to_gray(image)
    factor = max(1, math.ceil(math.sqrt(gray.width * gray.height / max_pixels)))
    while True:
        width, height = math.ceil(gray.width / factor), math.ceil(gray.height / factor)  # reduce() keeps edges
        if width * height <= max_pixels:
            buffer = io.BytesIO()
            (gray.reduce(factor) if factor > 1 else gray).save(buffer, format="PNG")
            if buffer.tell() <= max_bytes or width * height == 1:
                return buffer.getvalue()
        factor += 1


def _encoded_for_tf(image, data: Optional[bytes]) -> bytes:
    """The bytes TensorFlow can decode: the file itself (data), or a lossless 8-bit gray PNG of the
    image (TIFF, WebP, CMYK, 16-bit or float, or turned upright: data None)."""
    from faces.gray import to_gray  # pylint: disable=import-outside-toplevel

    if data is not None and image.format in TF_DECODABLE:
        return data
    buffer = io.BytesIO()
    to_gray(image).save(buffer, format="PNG")
    return buffer.getvalue()


_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>")


def _reason(error: Exception) -> str:
    """What went wrong, in one line: TensorFlow's errors open with "Graph execution error:" and the
    failing node's stack, and close with the node's name; the line between is the cause."""
    text = getattr(error, "message", None) or str(error)
    for line in text.splitlines():
        if line.strip() and not line[0].isspace() and not line.startswith(_TF_NOISE):
            return re.sub(r"\s*(\[\[|\[Op:).*$", "", line.strip())
    return text.strip() or type(error).__name__


def _faces_in(gray: np.ndarray, photo: bool):
    """(face, crop) for every face found: the one face stage (faces/); the thorough search for
    photos, the whole-frame passes alone for video frames (detect.find_faces)."""
    from faces import crop, detect  # pylint: disable=import-outside-toplevel

    return [(face, crop.fer_crop(gray, face))
            for face in detect.find_faces(gray, thorough=photo, tiled_fallback=photo)]


def _photo(classifier: Classifier, name: str, path: Path, detect: bool, max_pixels: int,
           max_bytes: int) -> Iterator[dict]:
    from faces.gray import to_gray  # pylint: disable=import-outside-toplevel

    # An input that cannot be read, or whose face search fails, gets its own line.
    try:
        image, data = _open_image(path, max_pixels, max_bytes)
        upright = _upright(image)
        if not detect or upright.size == (dc.IMAGE_SIZE, dc.IMAGE_SIZE):
            encoded = _encoded_within_model_budgets(upright, data if upright is image else None, classifier)
            yield {"input": name, **classifier.encoded([encoded])[0]}
            return
        gray = np.asarray(to_gray(upright), dtype=np.uint8)
    except Exception as error:  # pylint: disable=broad-except
        yield {"input": name, "error": f"cannot read image: {_reason(error)}"}
        return
    try:
        found = _faces_in(gray, photo=True)
    except Exception as error:  # pylint: disable=broad-except
        yield {"input": name, "error": f"face search failed: {type(error).__name__}: {_reason(error)}"}
        return
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
            pending.append((index, seconds, _faces_in(gray, photo=False)))
            if progress:
                progress(1)
            if sum(len(f) for _, _, f in pending) >= BATCH or len(pending) >= BATCH:
                yield from flush()
    except Exception as error:  # pylint: disable=broad-except  # an unreadable video gets its own line
        yield from flush()
        yield {"input": name, "error": str(error) if isinstance(error, video.VideoError)
               else f"{name}: {type(error).__name__}: {_reason(error)}"}
        return
    yield from flush()


def _utf8_lines(f) -> Iterator[str]:
    """The lines of a binary file as text, for csv.reader: decoded one at a time, so a byte that is
    not UTF-8 is reported with its line (a UTF-8 BOM is dropped, as Excel writes one)."""
    for number, raw in enumerate(f, 1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            kind = "UTF-16 text" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") and number == 1 else "not UTF-8 text"
            raise ValueError(f"line {number}: {kind} (byte {error.start + 1} of the line: {error.reason}); "
                             "a CSV must be UTF-8") from None


def _csv_examples(path: Path) -> Iterator[Tuple[str, object]]:
    """(input name, serialized tf.Example or an error message) per data row of a CSV with `pixels`;
    a file that cannot be read as one (not UTF-8, empty, no pixels column, a field over the csv
    module's limit) ends with a message for the file itself, naming it and the line where known."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.example_gen.fer2013_csv import parse_pixels  # pylint: disable=import-outside-toplevel

    reader = None
    try:
        with open(path, "rb") as f:
            reader = csv.reader(_utf8_lines(f))
            header = [c.strip().lower() for c in next(reader, [])]
            if dc.PIXELS not in header:
                yield str(path), (f"{path}: no 'pixels' column in the header {header}" if header
                                  else f"{path}: empty file, no header with a 'pixels' column")
                return
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
    except csv.Error as error:  # a field over the csv module's limit, a NUL byte...
        yield str(path), f"{path}: line {reader.line_num}: {error}; the rest of the file is not read"
    except (OSError, ValueError) as error:  # _utf8_lines names its line
        yield str(path), f"{path}: {error}" + ("; the rest of the file is not read" if reader else "")


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


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def expand(paths, notice: Callable[[str], None] = _to_stderr) -> Iterator[Path]:
    """The files to answer for: folders become their images and videos, sorted, with the folders
    they link to (each real folder once: a link to a parent is no loop). Operating-system metadata
    (macOS's `._` copies, .DS_Store: ingestion's OS_METADATA) is left out; the other files a folder
    holds that predict does not read (HEIC, CSV, text) are named in one notice per folder."""
    from contract.data import OS_METADATA  # pylint: disable=import-outside-toplevel
    from faces import video  # pylint: disable=import-outside-toplevel

    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        found, skipped, metadata, visited = [], [], 0, set()
        for folder, folders, files in os.walk(path, followlinks=True):
            real = os.path.realpath(folder)
            if real in visited:
                folders[:] = []
                continue
            visited.add(real)
            metadata += sum(bool(OS_METADATA.match(n)) for n in folders)
            folders[:] = [n for n in folders if not OS_METADATA.match(n)]
            for file in files:
                if OS_METADATA.match(file):
                    metadata += 1
                elif Path(file).suffix.lower() in IMAGE_SUFFIXES or video.is_video(file):
                    found.append(Path(folder, file))
                else:
                    skipped.append(str(Path(folder, file)))
        if skipped or metadata:
            named = ", ".join(sorted(skipped)[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
            notice(f"{path}: skipped " + "; ".join(
                ([f"{len(skipped)} file(s) of a kind predict does not read: {named}"] if skipped else [])
                + ([f"{metadata} operating-system metadata item(s) (._ files, .DS_Store...)"] if metadata else [])))
        yield from sorted(found)


def predict_lines(model_dir: str, paths: List[str], detect: bool = True, every: int = 1,
                  max_pixels: Optional[int] = None, max_bytes: Optional[int] = None,
                  progress: Optional[Callable[[str, int], Callable[[int], None]]] = None,
                  notice: Callable[[str], None] = _to_stderr) -> Iterator[dict]:
    """The answer lines for every input, in input order (see the module docstring).

    max_pixels, max_bytes: image budgets; None: the ones the model was exported with, so predict
    refuses what the served model would.
    progress(name, frames) -> advance(n): called once per video, for a progress bar; frames is 0
    when the container does not say (mkv, webm) or cannot be read (its error line follows).
    notice(message): what a folder held that is not answered (expand).
    """
    from faces import video  # pylint: disable=import-outside-toplevel

    classifier = Classifier(model_dir)
    max_pixels = classifier.max_image_pixels if max_pixels is None else max_pixels
    max_bytes = classifier.max_image_bytes if max_bytes is None else max_bytes
    for path in expand(paths, notice):
        name = str(path)
        if path.suffix.lower() == ".csv":
            yield from _csv(classifier, path)
        elif video.is_video(name):
            advance = progress(name, video.frame_count(name) // every) if progress else None
            yield from _video(classifier, name, path, every, advance)
        else:
            yield from _photo(classifier, name, path, detect, max_pixels, max_bytes)

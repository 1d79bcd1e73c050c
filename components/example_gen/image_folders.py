"""Image-folder datasets: CK+ (CK+48 layout), JAFFE and FERG-DB.

Listing is cheap and done before the Beam pipeline: labels and subjects come from paths, so the
subject-disjoint split is decided up front (subject_split.py). Decoding runs in Beam, in parallel.

Decoding, in one place: Pillow (JAFFE is TIFF, which tf.io cannot read), `convert("L")` (ITU-R
601 luma; an alpha channel is dropped, not composited, exactly as the serving signature's
`tf.io.decode_image(channels=3)` + `tf.image.rgb_to_grayscale` do, so training and serving see the
same gray levels), then a resize to 48x48 with Pillow's bilinear filter, which widens its support
when shrinking (antialiasing) as `tf.image.resize(method="bilinear", antialias=True)` does. The
aspect ratio is not kept, also as in serving. 48x48 inputs (CK+48) pass through unchanged.
"""
import collections
import dataclasses
import re
import struct
import zlib
from typing import Iterator, Optional

import apache_beam as beam
import numpy as np
from PIL import Image, UnidentifiedImageError

from components.example_gen import files
from components.example_gen.records import Reject, encode_examples
from contract.data import CKPLUS_FOLDERS, FERG_EXPRESSIONS, IMAGE_SIZE, JAFFE_CODES


CKPLUS_SUBJECT = re.compile(r"^(S\d+)_", re.IGNORECASE)                     # S005_001_00000011.png
JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.\w+$", re.IGNORECASE)  # KA.AN1.39.tiff

# Files an image folder may hold that are not images: named as unrecognised, never decoded.
_NOT_IMAGES = re.compile(r"^(\..*|thumbs\.db|desktop\.ini|readme.*|license.*|.*\.(txt|md|pdf|html?|csv))$",
                         re.IGNORECASE)


def image_dataset_of(folder_name: str) -> Optional[str]:
    """The source a folder holds, recognised by its name (CK+48, jaffe*, FERG*), or None."""
    name = folder_name.lower()
    if name in ("ck+48", "ck48"):
        return "ckplus"
    if name.startswith("jaffe"):
        return "jaffe"
    if name.startswith("ferg"):
        return "ferg"
    return None


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """An image found while listing, before the split is decided."""
    path: str
    source: str
    emotion: str   # FER2013 emotion name or CONTEMPT
    subject: str


@dataclasses.dataclass(frozen=True)
class ImageTask:
    path: str      # as opened; reports name it
    name: str      # relative to the data root: the image id
    source: str
    emotion: int
    subject: str
    split: str


def _images_in(walker, folder: str, source: str):
    """The files of a class folder; anything else there is named as unrecognised."""
    for entry in walker.children(folder, source):
        if entry.is_dir:
            walker.unrecognised(entry.path, f"folder inside a {source} image folder")
        elif _NOT_IMAGES.match(entry.name):
            walker.unrecognised(entry.path, "not an image (by its name)")
        else:
            yield entry


def list_ckplus(walker, root: str) -> Iterator[ImageFile]:
    """CK+48/<emotion>/S005_001_00000011.png; the subject is the S-number."""
    for folder in walker.children(root, "ckplus"):
        if not folder.is_dir:
            walker.unrecognised(folder.path, "file beside the CK+48 emotion folders")
            continue
        emotion = CKPLUS_FOLDERS.get(folder.name.lower())
        for image in _images_in(walker, folder.path, "ckplus"):
            subject = CKPLUS_SUBJECT.match(image.name)
            if emotion is None:
                walker.reject("ckplus", image.path, f"folder {folder.name!r} is outside CK+48's label map "
                                                    f"({' '.join(CKPLUS_FOLDERS)})")
            elif subject is None:
                walker.reject("ckplus", image.path, "file name does not start with a CK+ subject id (S005_...)")
            else:
                yield ImageFile(image.path, "ckplus", emotion, subject.group(1).upper())


def list_jaffe(walker, root: str) -> Iterator[ImageFile]:
    """jaffe/KA.AN1.39.tiff: poser KA, expression AN; the subject is the poser."""
    for image in _images_in(walker, root, "jaffe"):
        match = JAFFE_NAME.match(image.name)
        if match is None:
            walker.reject("jaffe", image.path, "file name is not JAFFE's POSER.CODEn.SERIAL form (KA.AN1.39.tiff)")
            continue
        poser, code = match.group(1).upper(), match.group(2).upper()
        if code not in JAFFE_CODES:
            walker.reject("jaffe", image.path, f"expression code {code!r} is outside JAFFE's label map "
                                               f"({' '.join(JAFFE_CODES)})")
        else:
            yield ImageFile(image.path, "jaffe", JAFFE_CODES[code], poser)


def list_ferg(walker, root: str) -> Iterator[ImageFile]:
    """FERG_DB_256/<character>/<character>_<expression>/<character>_<expression>_<n>.png."""
    for character in walker.children(root, "ferg"):
        if not character.is_dir:
            walker.unrecognised(character.path, "file beside the FERG character folders")
            continue
        for folder in walker.children(character.path, "ferg"):
            if not folder.is_dir:
                walker.unrecognised(folder.path, "file beside the FERG expression folders")
                continue
            prefix = character.name.lower() + "_"
            expression = folder.name.lower()[len(prefix):] if folder.name.lower().startswith(prefix) else None
            for image in _images_in(walker, folder.path, "ferg"):
                if expression is None:
                    walker.reject("ferg", image.path, f"folder {folder.name!r} is not named "
                                                      f"{character.name}_<expression>")
                elif expression not in FERG_EXPRESSIONS:
                    walker.reject("ferg", image.path, f"expression {expression!r} is outside FERG's label map "
                                                      f"({' '.join(FERG_EXPRESSIONS)})")
                else:
                    yield ImageFile(image.path, "ferg", FERG_EXPRESSIONS[expression], character.name)


LISTERS = {"ckplus": list_ckplus, "jaffe": list_jaffe, "ferg": list_ferg}


class ImageDefect(ValueError):
    """The file is not a usable image: a bad record (quarantinable within the budget)."""


class UnreadableFile(ImageDefect):
    """The file cannot be read at all (permissions, a folder): the environment, not the data, is
    wrong, so no bad-record budget excuses it."""


# What Pillow raises for truncated or malformed image data, across its format plugins.
_CORRUPT_DATA = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def load_face(path: str, max_image_pixels: int) -> np.ndarray:
    """The image as uint8[48*48] grayscale (see the module docstring); ImageDefect if unusable."""
    try:
        with files.open_binary(path) as f, Image.open(f) as image:  # reads the header only
            width, height = image.size
            if width * height > max_image_pixels:
                raise ImageDefect(f"decompression bomb: the header says {width}x{height} = {width * height:,} "
                                  f"pixels, over max_image_pixels = {max_image_pixels:,}")
            gray = image.convert("L")
            if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
                gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(gray, dtype=np.uint8).reshape(-1)
    except ImageDefect:
        raise
    except Image.DecompressionBombError as error:
        raise ImageDefect(f"decompression bomb: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageDefect("not an image (Pillow cannot identify its format)") from error
    except FileNotFoundError as error:
        raise ImageDefect(f"cannot read the file: {error}") from error
    except (PermissionError, IsADirectoryError) as error:
        raise UnreadableFile(f"cannot read the file: {error.strerror}") from error
    except _CORRUPT_DATA as error:  # MemoryError and programming errors are not bad data: they propagate
        raise ImageDefect(f"corrupt image ({type(error).__name__}: {error})") from error


class DecodeImage(beam.DoFn):
    """ImageTask -> (split, serialized tf.Example); tagged 'rejected' Rejects and 'tally' Counters."""

    def __init__(self, max_image_pixels: int):
        super().__init__()
        self._max_image_pixels = max_image_pixels

    def process(self, task: ImageTask):
        try:
            pixels = load_face(task.path, self._max_image_pixels)
        except ImageDefect as defect:
            yield beam.pvalue.TaggedOutput("rejected", Reject(task.source, task.path, None, str(defect),
                                                              fatal=isinstance(defect, UnreadableFile)))
            yield beam.pvalue.TaggedOutput("tally", collections.Counter({("rejected", task.source): 1}))
            return
        [example] = encode_examples(pixels[None], [task.emotion], task.source, [task.name], [task.subject])
        yield task.split, example
        yield beam.pvalue.TaggedOutput(
            "tally", collections.Counter({("example", task.source, task.split, task.emotion): 1}))

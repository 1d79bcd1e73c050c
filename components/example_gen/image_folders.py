"""Image-folder datasets: CK+ (the CK+48 crops and the original cohn-kanade-images layout), JAFFE,
FERG-DB, and FER2013 as Kaggle ships it in image files (train/angry/Training_10118481.jpg).

A dataset folder is recognised by what it holds, wherever it sits below the data root
(`layout_of`): a folder of JAFFE-named images, one with CK+48's emotion folders, one with FERG's
character folders, one with CK+'s `cohn-kanade-images/` beside `Emotion/`, one with FER2013's class
folders of Usage-named images (or with train/ and test/ folders holding them). Names above it do not
matter (`downloads/jaffe/jaffe/`, a root itself called `jaffe`). Listing is cheap and done before
the Beam pipeline: labels and subjects come from paths (and CK+'s small label files), so the
subject-disjoint split is decided up front (subject_split.py); FER2013's images carry their own
split, its Usage, in their names. Decoding runs in Beam, in parallel.

Decoding, in one place: Pillow (JAFFE is TIFF, which tf.io cannot read), `convert("L")` (ITU-R
601 luma; an alpha channel is dropped, not composited, exactly as the serving signature's
`tf.io.decode_image(channels=3)` + `tf.image.rgb_to_grayscale` do, so training and serving see the
same gray levels), then either the face stage (faces/: the largest face, FER2013-framed and
eye-levelled; for layouts whose images are whole frames) or a resize of the whole image to 48x48
with Pillow's bilinear filter, which widens its support when shrinking (antialiasing) as
`tf.image.resize(method="bilinear", antialias=True)` does. 48x48 inputs (CK+48) pass unchanged.
"""
import collections
import concurrent.futures
import dataclasses
import io
import itertools
import os
import re
import struct
import zlib
from typing import Dict, Iterator, List, Optional, Tuple

import apache_beam as beam
import numpy as np
from PIL import Image, UnidentifiedImageError

from components.example_gen import files
from components.example_gen.options import CKPLUS48, CKPLUS_ORIGINAL, FER2013_IMAGES, FERG, JAFFE
from components.example_gen.records import IngestError, Reject, encode_examples
from contract.data import (CKPLUS_CODES, CKPLUS_FOLDERS, FER2013_FOLDERS, FER2013_USAGE_SPLITS, FERG_EXPRESSIONS,
                           IMAGE_SIZE, JAFFE_CODES)
from faces.gray import NoGrayScale, to_gray

CKPLUS_SUBJECT = re.compile(r"^(S\d+)_", re.IGNORECASE)                     # S005_001_00000011.png
CKPLUS_FRAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.\w+$", re.IGNORECASE)      # S005_001_00000011.png
CKPLUS_EMOTION = re.compile(r"^(S\d+)_(\d+)_(\d+)_emotion\.txt$", re.IGNORECASE)
JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.\w+$", re.IGNORECASE)  # KA.AN1.39.tiff
FER2013_NAME = re.compile(r"^(%s)_\d+\.\w+$" % "|".join(FER2013_USAGE_SPLITS), re.IGNORECASE)  # Training_3908.jpg
_FER2013_USAGE = {usage.lower(): usage for usage in FER2013_USAGE_SPLITS}

SOURCE_OF = {CKPLUS48: "ckplus", CKPLUS_ORIGINAL: "ckplus", JAFFE: "jaffe", FERG: "ferg", FER2013_IMAGES: "fer2013"}
DESCRIPTION = {CKPLUS48: "CK+48 crops", CKPLUS_ORIGINAL: "CK+ original (cohn-kanade-images + Emotion)",
               JAFFE: "JAFFE", FERG: "FERG-DB",
               FER2013_IMAGES: "FER2013 as images (class folders; the split from each name's Usage)"}

ENCODE_BATCH = 64  # decoded images encoded to tf.Examples together

# Files an image folder may hold that are not images: named as unrecognised, never decoded.
_NOT_IMAGES = re.compile(r"^(\..*|thumbs\.db|desktop\.ini|readme.*|license.*|"
                         r".*\.(txt|md|pdf|html?|csv|xlsx?|docx?|rtf|json|xml|ya?ml|log|py|m|mat|npy))$", re.IGNORECASE)


def _name_hint(folder_name: str) -> Optional[str]:
    """The layout a folder's own name suggests (CK+48, jaffe*, FERG*): used only when its content
    does not say, so that a misnamed image inside is reported rather than the folder ignored."""
    name = folder_name.lower()
    if name in ("ck+48", "ck48"):
        return CKPLUS48
    if name.startswith("jaffe"):
        return JAFFE
    if name.startswith("ferg"):
        return FERG
    return None


def layout_of(walker, folder: str, name: str, allow_name_hint: bool) -> Optional[str]:
    """The layout a folder holds, by its content (a look at two levels); by its name as a last
    resort (allow_name_hint: nothing below it was recognised)."""
    found = layouts_in(walker, folder)
    if found:
        return found[0]
    return _name_hint(name) if allow_name_hint else None


def layouts_in(walker, folder: str) -> List[str]:
    """Every layout a folder's own content matches, most specific first. More than one is two
    datasets unpacked into one folder (JAFFE's images beside CK+48's emotion folders), which
    plan_ingestion refuses: each lister would take the other's files for strays."""
    children = walker.peek(folder)
    found = []
    if ckplus_parts(walker, folder).get(CKPLUS_IMAGES):  # without Emotion: every sequence counted as unlabelled
        found.append(CKPLUS_ORIGINAL)
    if any(not c.is_dir and JAFFE_NAME.match(c.name) for c in children) or _jaffe_folders(walker, folder):
        found.append(JAFFE)
    emotion_folders = [c for c in children if c.is_dir and c.name.lower() in CKPLUS_FOLDERS]
    if any(any(not g.is_dir and CKPLUS_SUBJECT.match(g.name) for g in walker.peek(folder_entry.path))
           for folder_entry in emotion_folders[:3]):
        found.append(CKPLUS48)
    if any(_is_ferg_character(walker, c) for c in [c for c in children if c.is_dir][:8]):
        found.append(FERG)
    if fer2013_class_folders(walker, folder) or fer2013_split_folders(walker, folder):
        found.append(FER2013_IMAGES)
    return found


def fer2013_class_folders(walker, folder: str) -> List:
    """FER2013's class folders (angry/ ... neutral/, as Kaggle's image download names them) that
    hold FER2013-named images (Training_3908.jpg, PublicTest_..., PrivateTest_...)."""
    return [c for c in walker.peek(folder) if c.is_dir and c.name.lower() in FER2013_FOLDERS
            and any(not g.is_dir and FER2013_NAME.match(g.name) for g in walker.peek(c.path))]


def fer2013_split_folders(walker, folder: str) -> List:
    """Folders holding FER2013's class folders: Kaggle's train/ and test/ (whatever their names:
    each image's split is in its own name)."""
    return [c for c in walker.peek(folder) if c.is_dir and fer2013_class_folders(walker, c.path)]


def _jaffe_folders(walker, folder: str) -> List:
    """Subfolders of JAFFE sorted into folders, as repacks ship it (by expression,
    jaffe/angry/KA.AN1.39.tiff; by poser; into train/ and test/): two or more folders of JAFFE-named
    images, no name in two of them (the file names keep the labels). Two whole copies side by
    side hold the same names: they stay two copies, an error."""
    holding = []
    for child in (c for c in walker.peek(folder) if c.is_dir):
        names = {g.name.lower() for g in walker.peek(child.path) if not g.is_dir and JAFFE_NAME.match(g.name)}
        if names:
            holding.append((child, names))
    every_name = [name for _, names in holding for name in names]
    if len(holding) < 2 or len(every_name) != len(set(every_name)):
        return []
    return [child for child, _ in holding]


def _is_ferg_character(walker, entry) -> bool:
    """A FERG character folder: it holds <character>_<expression> folders."""
    prefix = entry.name.lower() + "_"
    return entry.is_dir and any(g.is_dir and g.name.lower().startswith(prefix)
                                and g.name.lower()[len(prefix):] in FERG_EXPRESSIONS for g in walker.peek(entry.path))


CKPLUS_IMAGES, CKPLUS_LABELS = "cohn-kanade-images", "emotion"
CKPLUS_UNUSED = ("landmarks", "facs")  # shipped with CK+, not read
_CKPLUS_PARTS = (CKPLUS_IMAGES, CKPLUS_LABELS) + CKPLUS_UNUSED
_CKPLUS_NAMES = {CKPLUS_IMAGES: "cohn-kanade-images", CKPLUS_LABELS: "Emotion", "landmarks": "Landmarks",
                 "facs": "FACS"}


def ckplus_parts(walker, folder: str) -> Dict[str, List[tuple]]:
    """{part: [(its folder, the child of `folder` holding it)]} for CK+'s cohn-kanade-images, Emotion,
    Landmarks and FACS folders: side by side in `folder` (the holder is the part itself), or each one
    level down in a folder or archive of its own, as CK+ is shipped (extended-cohn-kanade-images.zip,
    Emotion_labels.zip, FACS_labels.zip, Landmarks.zip side by side, or unpacked into folders of
    those names). A child holding both images and labels is a CK+ folder of its own, not a part."""
    parts = collections.defaultdict(list)
    for child in walker.peek(folder):
        if not child.is_dir:
            continue
        if child.name.lower() in _CKPLUS_PARTS:
            parts[child.name.lower()].append((child, child))
            continue
        inside = [g for g in walker.peek(child.path) if g.is_dir and g.name.lower() in _CKPLUS_PARTS]
        if not {CKPLUS_IMAGES, CKPLUS_LABELS} <= {g.name.lower() for g in inside}:
            for part in inside:
                parts[part.name.lower()].append((part, child))
    return parts


def dataset_children(walker, layout: str, folder: str) -> List[str]:
    """The paths of a dataset folder's children that make up its dataset; the others may hold data
    of their own (plan_ingestion searches them: a fer2013.csv beside CK+'s folders is read too)."""
    children = walker.peek(folder)
    if layout == CKPLUS_ORIGINAL:
        return [holder.path for found in ckplus_parts(walker, folder).values() for _, holder in found]
    if layout == CKPLUS48:
        return [c.path for c in children if c.is_dir and c.name.lower() in CKPLUS_FOLDERS]
    if layout == FERG:
        return [c.path for c in children if _is_ferg_character(walker, c)]
    if layout == FER2013_IMAGES:
        return [c.path for c in fer2013_class_folders(walker, folder) + fer2013_split_folders(walker, folder)]
    return [c.path for c in children if not c.is_dir] + [c.path for c in _jaffe_folders(walker, folder)]  # JAFFE


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """An image found while listing, before the split is decided."""
    path: str
    layout: str
    emotion: str   # FER2013 emotion name or CONTEMPT
    subject: str
    split: Optional[str] = None  # the dataset's own split (FER2013's Usage); None: decided by subject

    @property
    def source(self) -> str:
        return SOURCE_OF[self.layout]


@dataclasses.dataclass(frozen=True)
class ImageTask:
    path: str      # as opened; reports name it ("<archive>!/<member>" inside an archive)
    name: str      # relative to the data root: the image id
    source: str
    emotion: int
    subject: str
    split: str
    face_crop: bool = False
    own_split: bool = False  # the split is the dataset's own (FER2013's Usage), not decided by subject


@dataclasses.dataclass(frozen=True)
class ArchiveImagesTask:
    """Every image of one archive (or one chunk of a zip), read in one pass over it."""
    archive: str
    images: Tuple[ImageTask, ...]


@dataclasses.dataclass(frozen=True)
class ImageFilesTask:
    """A chunk of image files, decoded side by side (DecodeImage's threads)."""
    images: Tuple[ImageTask, ...]


def _folders_in(walker, folder: str, source: str, what: str):
    """The subfolders of a dataset folder (`what` they are, for the message); a file there is named
    as unrecognised. What holds other data (walker.elsewhere) is left to plan_ingestion."""
    for entry in walker.children(folder, source):
        if entry.path in walker.elsewhere:
            continue
        if entry.is_dir:
            yield entry
        else:
            walker.unrecognised(entry.path, f"file beside {what}")


def _images_in(walker, folder: str, source: str, descend=frozenset()):
    """The files of a class folder (and of its subfolders in `descend`); anything else there is
    named as unrecognised."""
    for entry in walker.children(folder, source):
        if entry.path in walker.elsewhere:
            continue
        if entry.path in descend:
            yield from _images_in(walker, entry.path, source)
        elif entry.is_dir:
            walker.unrecognised(entry.path, f"folder inside a {source} image folder")
        elif _NOT_IMAGES.match(entry.name):
            walker.unrecognised(entry.path, "not an image (by its name)")
        else:
            yield entry


def list_ckplus48(walker, root: str, options) -> Iterator[ImageFile]:
    """CK+48/<emotion>/S005_001_00000011.png; the subject is the S-number."""
    for folder in _folders_in(walker, root, "ckplus", "the CK+48 emotion folders"):
        emotion = CKPLUS_FOLDERS.get(folder.name.lower())
        for image in _images_in(walker, folder.path, "ckplus"):
            subject = CKPLUS_SUBJECT.match(image.name)
            if emotion is None:
                walker.reject("ckplus", image.path, f"folder {folder.name!r} is outside CK+48's label map "
                                                    f"({' '.join(CKPLUS_FOLDERS)})")
            elif subject is None:
                walker.reject("ckplus", image.path, "file name does not start with a CK+ subject id (S005_...)")
            else:
                yield ImageFile(image.path, CKPLUS48, emotion, subject.group(1).upper())


def list_jaffe(walker, root: str, options) -> Iterator[ImageFile]:
    """jaffe/KA.AN1.39.tiff (or sorted into folders, jaffe/<folder>/KA.AN1.39.tiff): poser KA,
    expression AN; the subject is the poser."""
    sorted_into = {entry.path for entry in _jaffe_folders(walker, root)}
    for image in _images_in(walker, root, "jaffe", descend=sorted_into):
        match = JAFFE_NAME.match(image.name)
        if match is None:
            walker.reject("jaffe", image.path, "file name is not JAFFE's POSER.CODEn.SERIAL form (KA.AN1.39.tiff)")
            continue
        poser, code = match.group(1).upper(), match.group(2).upper()
        if code not in JAFFE_CODES:
            walker.reject("jaffe", image.path, f"expression code {code!r} is outside JAFFE's label map "
                                               f"({' '.join(JAFFE_CODES)})")
        else:
            yield ImageFile(image.path, JAFFE, JAFFE_CODES[code], poser)


def list_ferg(walker, root: str, options) -> Iterator[ImageFile]:
    """FERG_DB_256/<character>/<character>_<expression>/<character>_<expression>_<n>.png."""
    for character in _folders_in(walker, root, "ferg", "the FERG character folders"):
        for folder in _folders_in(walker, character.path, "ferg", "the FERG expression folders"):
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
                    yield ImageFile(image.path, FERG, FERG_EXPRESSIONS[expression], character.name)


def list_ckplus_original(walker, root: str, options) -> Iterator[ImageFile]:
    """cohn-kanade-images/S005/001/S005_001_00000001.png ... (a sequence from neutral to peak), the
    peak frame's label in Emotion/S005/001/S005_001_00000011_emotion.txt (one float, a CK+ code).

    The last `ckplus_peak_frames` frames up to the labelled one get its label; with
    `ckplus_first_frame_neutral` the sequence's first frame counts as neutral too. Sequences without
    a label file are counted and left out (CK+ labels 327 of its 593 sequences).
    """
    parts = ckplus_parts(walker, root)
    for name in (CKPLUS_IMAGES, CKPLUS_LABELS):
        if len(parts[name]) > 1:
            raise IngestError(f"{walker.root} holds CK+'s {_CKPLUS_NAMES[name]} twice: "
                              + " and ".join(walker.relpath(part.path) for part, _ in parts[name])
                              + " (a zip and the folder unpacked from it are two copies). Keep one copy under the "
                                "data root.")
    (images, _), = parts[CKPLUS_IMAGES]
    emotion = parts[CKPLUS_LABELS][0][0] if parts.get(CKPLUS_LABELS) else None
    if emotion is None:
        walker.note(f"{walker.relpath(images.path)}/: CK+'s frames without its Emotion labels (an Emotion/ folder "
                    "or Emotion_labels.zip beside it): no frame can be labelled, every sequence is counted and "
                    "left out")
    part_paths = {part.path for found in parts.values() for part, _ in found}
    holders = {holder.path: holder for found in parts.values() for _, holder in found}
    for entry in walker.children(root, "ckplus"):
        if entry.path not in holders and entry.path not in walker.elsewhere:
            walker.unrecognised(entry.path, "beside CK+'s cohn-kanade-images and Emotion folders")
    for holder in holders.values():  # Emotion_labels.zip and the like: what else they hold is named
        if holder.path not in part_paths:
            for entry in walker.children(holder.path, "ckplus"):
                if entry.path not in part_paths:
                    walker.unrecognised(entry.path, "beside a CK+ folder in its download")
    for name in CKPLUS_UNUSED:
        for part, _ in parts.get(name, ()):
            walker.note(f"{walker.relpath(part.path)}/: CK+ {_CKPLUS_NAMES[name]}, not used")
    labels, seen = (_ckplus_labels(walker, emotion.path) if emotion else {}), set()
    yield from _ckplus_frames(walker, images, labels, seen, options)
    orphans = sorted(set(labels) - seen)
    if orphans:
        walker.note(f"{walker.relpath(emotion.path)}/: {len(orphans)} CK+ emotion label(s) without their image "
                    f"sequence in {walker.relpath(images.path)}/, e.g. {'/'.join(orphans[0])}")


def _ckplus_frames(walker, images, labels, seen, options) -> Iterator[ImageFile]:
    """The labelled frames of each sequence under cohn-kanade-images/ (`seen`: the sequences found)."""
    for subject in _folders_in(walker, images.path, "ckplus", "CK+'s subject folders"):
        for sequence in _folders_in(walker, subject.path, "ckplus", "CK+'s sequence folders"):
            frames = []
            for frame in _images_in(walker, sequence.path, "ckplus"):
                match = CKPLUS_FRAME.match(frame.name)
                if match is None:
                    walker.reject("ckplus", frame.path, "file name is not CK+'s S005_001_00000001.png form")
                else:
                    frames.append((int(match.group(3)), frame))
            frames.sort(key=lambda f: f[0])
            seen.add((subject.name.upper(), sequence.name))
            label = labels.get((subject.name.upper(), sequence.name))
            if label is None:
                walker.exclude("ckplus", "CK+ sequence without an Emotion label, not ingested", len(frames))
                continue
            peak_number, code_name = label
            if code_name is None:
                continue  # a bad label file: already rejected
            upto = [f for f in frames if f[0] <= peak_number] or frames
            chosen = {id(f[1]): code_name for f in upto[-options.ckplus_peak_frames:]}
            if options.ckplus_first_frame_neutral and frames and id(frames[0][1]) not in chosen:
                chosen[id(frames[0][1])] = "neutral"
            for _, frame in frames:
                if id(frame) in chosen:
                    yield ImageFile(frame.path, CKPLUS_ORIGINAL, chosen[id(frame)], subject.name.upper())
            left = len(frames) - len(chosen)
            if left:
                walker.exclude("ckplus", "CK+ frames between the first and the peak frames, not used", left)


def _ckplus_labels(walker, emotion_root: str) -> Dict[Tuple[str, str], Tuple[int, Optional[str]]]:
    """(subject, sequence) -> (peak frame number, FER2013 emotion name or None when unreadable)."""
    labels = {}
    for subject in _folders_in(walker, emotion_root, "ckplus", "CK+'s Emotion subject folders"):
        for sequence in _folders_in(walker, subject.path, "ckplus", "CK+'s Emotion sequence folders"):
            for entry in walker.children(sequence.path, "ckplus"):
                match = CKPLUS_EMOTION.match(entry.name)
                if match is None:
                    walker.unrecognised(entry.path, "not a CK+ emotion label file")
                    continue
                key = (subject.name.upper(), sequence.name)
                try:
                    text = walker.read_small(entry.path).decode("ascii").strip()
                    code = float(text)
                except (ValueError, UnicodeDecodeError, OSError):
                    walker.reject("ckplus", entry.path, "not a CK+ emotion code (one number, e.g. 3.0000000e+00)")
                    labels[key] = (int(match.group(3)), None)
                    continue
                name = CKPLUS_CODES.get(int(code)) if code == int(code) else None
                if name is None:
                    walker.reject("ckplus", entry.path, f"emotion code {text!r} is outside CK+'s label map "
                                                        f"({', '.join(f'{k} {v}' for k, v in CKPLUS_CODES.items())})")
                labels[key] = (int(match.group(3)), name)
    return labels


def list_fer2013_images(walker, root: str, options) -> Iterator[ImageFile]:
    """FER2013 as Kaggle's image download holds it: train/angry/Training_10118481.jpg,
    test/happy/PrivateTest_95094.jpg (or the class folders without train/ and test/). The class is
    the folder's; the split is the Usage that starts each name, as fer2013.csv's Usage column gives
    it (Training, PublicTest, PrivateTest -> train, eval, test): Kaggle's test/ holds both test
    halves. FER2013 has no subjects."""
    splits = {c.path for c in fer2013_split_folders(walker, root)}
    # Beside train/ and test/, a folder named like a class is read only if it holds FER2013's images:
    # Kaggle's download has none there, so one of other pictures is a stray, named, not bad records.
    classes = {c.path for c in fer2013_class_folders(walker, root)} if splits else None
    yield from _fer2013_images_in(walker, root, splits, classes, "FER2013's image folders")
    for folder in sorted(splits):
        yield from _fer2013_images_in(walker, folder, (), None, "FER2013's class folders")


def _fer2013_images_in(walker, folder: str, split_folders, class_folders, beside: str) -> Iterator[ImageFile]:
    """The images of a folder's FER2013 class folders (any folder of a class's name when
    class_folders is None); anything else there is named."""
    for entry in walker.children(folder, "fer2013"):
        if entry.path in walker.elsewhere or entry.path in split_folders:
            continue
        if not entry.is_dir or entry.name.lower() not in FER2013_FOLDERS or (
                class_folders is not None and entry.path not in class_folders):
            walker.unrecognised(entry.path, f"{'folder' if entry.is_dir else 'file'} beside {beside}")
            continue
        for image in _images_in(walker, entry.path, "fer2013"):
            usage = FER2013_NAME.match(image.name)
            if usage is None:
                walker.reject("fer2013", image.path, _fer2013_name_defect(image.name))
            else:
                yield ImageFile(image.path, FER2013_IMAGES, FER2013_FOLDERS[entry.name.lower()], "",
                                FER2013_USAGE_SPLITS[_FER2013_USAGE[usage.group(1).lower()]])


def _fer2013_name_defect(name: str) -> str:
    usage = next((u for u in FER2013_USAGE_SPLITS if name.lower().startswith(u.lower())), None)
    if usage:  # a copy's suffix ("Training_3908 (1).jpg"), a second extension, another separator
        return (f"file name is not FER2013's {usage}_<number>.<extension> form (Training_3908.jpg): a copy of a file, "
                "or renamed?")
    return (f"file name does not start with FER2013's Usage ({', '.join(FER2013_USAGE_SPLITS)}: Training_3908.jpg), "
            "which gives its split")


LISTERS = {CKPLUS48: list_ckplus48, CKPLUS_ORIGINAL: list_ckplus_original, JAFFE: list_jaffe, FERG: list_ferg,
           FER2013_IMAGES: list_fer2013_images}


class ImageDefect(ValueError):
    """The file is not a usable image: a bad record (quarantinable within the budget)."""


class UnreadableFile(ImageDefect):
    """The file cannot be read at all (permissions, a folder): the environment, not the data, is
    wrong, so no bad-record budget excuses it."""


# What Pillow raises for truncated or malformed image data, across its format plugins.
_CORRUPT_DATA = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def _decode(source, max_image_pixels: int, face_crop: bool):
    """(uint8 [48*48] face, face box or None) from an open binary stream."""
    with Image.open(source) as image:  # reads the header only
        width, height = image.size
        if width * height > max_image_pixels:
            raise ImageDefect(f"decompression bomb: the header says {width}x{height} = {width * height:,} "
                              f"pixels, over max_image_pixels = {max_image_pixels:,}")
        try:
            gray = to_gray(image)
        except NoGrayScale as error:
            raise ImageDefect(str(error)) from error
    if face_crop:
        from faces import crop, detect  # pylint: disable=import-outside-toplevel

        array = np.asarray(gray, dtype=np.uint8)
        found = detect.find_faces(array)
        if not found:
            raise ImageDefect(f"no face found (BlazeFace, score >= {detect.MIN_SCORE}) in the {width}x{height} image")
        face = max(found, key=lambda f: f.area)
        return crop.fer_crop(array, face).reshape(-1), face.box
    if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
        gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8).reshape(-1), None


def load_face(path: str, max_image_pixels: int, face_crop: bool = False, content: Optional[bytes] = None):
    """The image as uint8[48*48] grayscale (see the module docstring); ImageDefect if unusable.

    With face_crop, (pixels, face box) is returned instead: the box is where in the image the
    face was found. content: the file's bytes when they were read already (archive members).
    """
    try:
        if content is not None:
            result = _decode(io.BytesIO(content), max_image_pixels, face_crop)
        else:
            with files.open_binary(path) as f:
                result = _decode(f, max_image_pixels, face_crop)
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
    return result if face_crop else result[0]


class DecodeImage(beam.DoFn):
    """ImageFilesTask, ArchiveImagesTask or ImageTask -> (split, serialized tf.Example); tagged
    'rejected' Rejects and 'tally' Counters, in the task's order.

    The images of a task are decoded (and their faces found) by one thread per core: Pillow and the
    face detector's interpreter release the GIL, and Beam's in-process DirectRunner gives a DoFn one
    element at a time. At most 2 x threads images are in flight, so memory stays bounded (an
    archive member is at most max_member_bytes).
    """

    def __init__(self, max_image_pixels: int, max_member_bytes: int, threads: Optional[int] = None):
        super().__init__()
        self._max_image_pixels, self._max_member_bytes = max_image_pixels, max_member_bytes
        self._threads = threads or os.cpu_count() or 1
        self._pool = None

    def setup(self):
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, thread_name_prefix="decode-image")

    def teardown(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def process(self, task):
        self.setup()  # also when called from another DoFn's process (ReadRecords)
        if isinstance(task, ArchiveImagesTask):
            yield from self._decoded(self._archive_members(task))
        else:
            yield from self._decoded((image, None) for image in getattr(task, "images", (task,)))

    def _archive_members(self, task: ArchiveImagesTask):
        """(ImageTask, content bytes or the Exception that stopped reading it), one pass over the archive."""
        by_member = {files.archives.split_path(t.path)[1]: t for t in task.images}
        seen = set()
        for member, content in files.archive_members(task.archive, list(by_member), self._max_member_bytes):
            seen.add(member)
            yield by_member[member], (ImageDefect(f"cannot read the archive member ({content})")
                                      if isinstance(content, Exception) else content)
        for member in sorted(set(by_member) - seen):
            yield by_member[member], ImageDefect("archive member vanished while reading")

    def _decoded(self, images):
        in_flight, decoded = collections.deque(), []
        for image, content in images:
            in_flight.append((image, content if isinstance(content, ImageDefect)
                              else self._pool.submit(self._load, image, content)))
            if len(in_flight) > 2 * self._threads:
                yield from self._collect(decoded, *in_flight.popleft())
            if len(decoded) >= ENCODE_BATCH:
                yield from self._encoded(decoded)
                decoded = []
        while in_flight:
            yield from self._collect(decoded, *in_flight.popleft())
        yield from self._encoded(decoded)

    def _load(self, task: ImageTask, content: Optional[bytes]):
        try:
            return load_face(task.path, self._max_image_pixels, task.face_crop, content)
        except ImageDefect as defect:
            return defect

    def _collect(self, decoded: list, task: ImageTask, pending):
        """Appends (task, pixels, face box or None) to `decoded`, or yields the task's Reject."""
        result = pending if isinstance(pending, ImageDefect) else pending.result()
        if isinstance(result, ImageDefect):
            yield from self._rejected(task, result)
        else:
            decoded.append((task,) + (result if task.face_crop else (result, None)))

    @staticmethod
    def _encoded(decoded: list):
        """The decoded images as examples, encoded a run at a time (records.encode_examples' batch
        encoder costs about as much for one example as for sixty-four), in their order."""
        tally = collections.Counter()
        runs = itertools.groupby(decoded, key=lambda d: (d[0].source, d[2] is None))
        for (source, without_boxes), run in runs:
            run = list(run)
            tasks = [task for task, _, _ in run]
            examples = encode_examples(np.stack([pixels for _, pixels, _ in run]), [t.emotion for t in tasks], source,
                                       [t.name for t in tasks], [t.subject for t in tasks],
                                       face_boxes=None if without_boxes else np.asarray([b for _, _, b in run],
                                                                                         np.float32))
            for task, example in zip(tasks, examples):
                yield task.split, example
                tally[("example", source, task.split, task.emotion)] += 1
        if tally:
            yield beam.pvalue.TaggedOutput("tally", tally)

    @staticmethod
    def _rejected(task: ImageTask, defect: ImageDefect):
        yield beam.pvalue.TaggedOutput("rejected", Reject(task.source, task.path, None, str(defect),
                                                          fatal=isinstance(defect, UnreadableFile)))
        yield beam.pvalue.TaggedOutput("tally", collections.Counter({("rejected", task.source): 1}))


def group_image_tasks(tasks: List[ImageTask], chunk: int = 64, zip_chunk: int = 1000) -> list:
    """Image tasks in chunks that DecodeImage decodes side by side: files in chunks of `chunk`,
    archive members gathered per archive (zips in chunks of `zip_chunk`, read in parallel; a tar in
    one task, read in one pass)."""
    plain, in_archives = [], collections.defaultdict(list)
    for task in tasks:
        archive, member = files.archives.split_path(task.path)
        (in_archives[archive] if member is not None else plain).append(task)
    grouped = [ImageFilesTask(tuple(plain[i:i + chunk])) for i in range(0, len(plain), chunk)]
    for archive, members in sorted(in_archives.items()):
        size = zip_chunk if archive.lower().endswith(".zip") else len(members)
        grouped += [ArchiveImagesTask(archive, tuple(members[i:i + size])) for i in range(0, len(members), size)]
    return grouped

"""Finding what a data root holds, before any record is read.

Datasets are recognised by their own name and content at any depth below the root (at most
MAX_DEPTH folders down), inside archives too (archives.py): what sits above a dataset does not
matter, and the root's own name is not taken for a dataset's. Two folders holding the same kind of
dataset are an error naming both. Every entry under the root ends up in exactly one place of the
Plan: a CSV task, an image task, an exclusion count (CK+ contempt, unlabelled CK+ sequences), a
Reject (a defect found by listing), or the list of unrecognised entries that reports name. Nothing
is skipped silently. Symlinks are followed only while they stay inside the root.
"""
import collections
import csv
import dataclasses
import os
import posixpath
import re
from typing import Counter, Dict, List, Set, Tuple

from components.example_gen import archives, files
from components.example_gen.fer2013_csv import (FER2013_FILE_NAMES, FERPLUS, LABELLED, LAYOUT_BY_FILE_NAME,
                                                UNLABELLED, USAGE_SPLIT, CsvTask, identify_csv, read_head)
from components.example_gen.image_folders import (DESCRIPTION, LISTERS, ImageTask, dataset_children,
                                                  fer2013_class_folders, fer2013_split_folders, layout_of, layouts_in)
from components.example_gen.options import CKPLUS48, CKPLUS_ORIGINAL, CONTEMPT_EXCLUDED, FER2013_IMAGES, IngestOptions
from components.example_gen.records import IngestError, Reject
from components.example_gen.subject_split import assign_subjects
from contract.data import FER2013_FOLDERS, FER2013_USAGE_SPLITS, OS_METADATA, SYNTHETIC_MARKER


MAX_DEPTH = 8  # folders (and archive levels) below the data root that are searched for datasets
OS_METADATA_REASON = "operating-system metadata, not data"  # contract.data.OS_METADATA, as unrecognised



@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    path: str
    is_dir: bool     # a folder, or an archive (listed as a folder of its members)


class DataRootWalker:
    """Lists folders and archives under one root, recording rejects, exclusions and unrecognised
    entries as it goes."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") or "/"
        self.rejects: List[Reject] = []
        self.unrecognised_entries: List[str] = []
        self.excluded: Counter = collections.Counter()
        self.notes: List[str] = []
        self._local = files.is_local(root)
        self._real_root = os.path.realpath(root) if self._local else None
        self._visited_dirs = {self._real_root}
        self._archives: Dict[str, archives.ArchiveIndex] = {}
        self._peeked: Dict[str, List[Entry]] = {}
        # Children of dataset folders that hold other data (a fer2013.csv beside CK+'s folders): the
        # listers leave them alone and plan_ingestion reads them as it reads any folder.
        self.elsewhere: Set[str] = set()

    def relpath(self, path: str) -> str:
        if self._local and archives.SEPARATOR not in path:
            return os.path.relpath(path, self.root)
        return path[len(self.root):].lstrip("/")

    def reject(self, source: str, path: str, defect: str, fatal: bool = False) -> None:
        """fatal: the defect loses a whole file or archive of data, which no bad-record budget excuses."""
        self.rejects.append(Reject(source, path, None, defect, fatal))

    def unrecognised(self, path: str, why: str) -> None:
        self.unrecognised_entries.append(f"{self.relpath(path)} ({why})")

    def exclude(self, source: str, reason: str, count: int = 1) -> None:
        if count:
            self.excluded[(source, reason)] += count

    def note(self, text: str) -> None:
        self.notes.append(text)

    def read_small(self, path: str) -> bytes:
        """A small file's bytes (archive members of a few KB come from the listing pass)."""
        archive, member = archives.split_path(path)
        if member is not None:
            for entry in self._archives[archive].children(posixpath.dirname(member)):
                if entry.name == member and entry.content is not None:
                    return entry.content
        with files.open_binary(path, max_member_bytes=archives.SMALL_MEMBER_BYTES) as f:
            return f.read(archives.SMALL_MEMBER_BYTES + 1)

    def peek(self, folder: str) -> List[Entry]:
        """A folder's children without recording anything (to recognise what a folder holds); each
        folder is listed once however often its content is looked at."""
        if folder not in self._peeked:
            self._peeked[folder] = self.children(folder, record=False)
        return self._peeked[folder]

    def identity(self, path: str) -> str:
        """What a path is on disk (a symlink's target), to search each folder once."""
        return os.path.realpath(path) if self._local and archives.SEPARATOR not in path else path

    def children(self, folder: str, source: str = "data root", record: bool = True) -> List[Entry]:
        archive, member = archives.split_path(folder)
        if member is not None or folder in self._archives or (
                archives.is_archive(folder) and not (self._local and os.path.isdir(folder))):
            return self._archive_children(archive, member or "", record)
        if not self._local:
            return [Entry(name, os.path.join(folder, name), is_dir or archives.is_archive(name))
                    for name, is_dir in files.list_dir(folder)
                    if not self._is_metadata(name, os.path.join(folder, name), record)]
        entries = []
        try:
            with os.scandir(folder) as scan:
                found = sorted(scan, key=lambda e: e.name)
        except OSError as error:
            if record:
                self.reject(source, folder, f"cannot list the folder: {error.strerror}", fatal=True)
            return []
        for item in found:
            if self._is_metadata(item.name, item.path, record):
                continue
            if item.is_symlink():
                target = os.path.realpath(item.path)
                if os.path.commonpath([target, self._real_root]) != self._real_root:
                    if record:
                        self.reject(source, item.path, f"symlink leads outside the data root, to {target}: not "
                                                       "followed (copy or move that data under the data root, or "
                                                       "point the data root at a folder that holds all of it)",
                                    fatal=os.path.isdir(target))  # a folder's worth of data is lost
                    continue
                if not os.path.exists(target):
                    if record:
                        self.reject(source, item.path, f"broken symlink, to {target}")
                    continue
            is_dir = item.is_dir()  # follows a symlink that stays inside the root
            if is_dir:
                real = os.path.realpath(item.path)
                if record and real in self._visited_dirs:
                    self.unrecognised(item.path, "folder already listed (symlink loop)")
                    continue
                if record:
                    self._visited_dirs.add(real)
            elif not item.is_file():
                if record:
                    self.unrecognised(item.path, "not a regular file")
                continue
            entries.append(Entry(item.name, item.path, is_dir or archives.is_archive(item.name)))
        return entries

    def _archive_children(self, archive: str, member_folder: str, record: bool = True) -> List[Entry]:
        index = self._archives.get(archive)
        if index is None:
            try:
                index = files.index_archive(archive)
            except archives.ArchiveError as error:
                self.reject("data root", archive, str(error), fatal=True)
                index = archives.ArchiveIndex(archive, "?", {"": []}, [])
            for name, why in index.refused:
                self.reject("data root", archives.member_path(archive, name), f"archive member refused: {why}")
            self._archives[archive] = index
        entries = []
        if record and not member_folder and index.kind != "?" and not index.children("") and not index.refused:
            self.unrecognised(archive, "an empty archive: no members")
        for member in sorted(index.children(member_folder), key=lambda m: m.name):
            path = archives.member_path(archive, member.name)
            base = posixpath.basename(member.name)
            if self._is_metadata(base, path, record):
                continue
            if not member.is_dir and archives.is_archive(base):
                if record:
                    self.unrecognised(path, "an archive inside an archive: not read")
                continue
            entries.append(Entry(base, path, member.is_dir))
        return entries

    def _is_metadata(self, name: str, path: str, record: bool) -> bool:
        """OS_METADATA, named as such (when recording)."""
        if not OS_METADATA.match(name):
            return False
        if record:
            self.unrecognised(path, OS_METADATA_REASON)
        return True


@dataclasses.dataclass
class Plan:
    """What one ingestion run will read, and what it found by listing alone."""
    data_root: str
    csv_tasks: List[CsvTask]
    image_tasks: List[ImageTask]
    rejects: List[Reject]                 # defects found by listing (bad names, label maps, symlinks)
    excluded: Counter                     # (source, reason) -> records left out on purpose
    unrecognised: List[str]               # "relative path (why)"
    datasets: List[str]                   # what was recognised, one line each
    notes: List[str]                      # anything else a user should know
    synthetic: bool = False               # the root says it holds synthetic faces (SYNTHETIC_MARKER)


def plan_ingestion(data_root: str, options: IngestOptions) -> Plan:
    """Lists the data root (cheap: names, CSV headers, small label files) and decides every image's split."""
    if not files.exists(data_root):
        raise IngestError(f"data root {data_root} does not exist")
    walker = DataRootWalker(data_root)
    csv_files: List[Tuple[Entry, object]] = []
    first_pixels: Dict[str, str] = {}  # CSV path -> its first row's pixels
    ferplus_files: List[Entry] = []
    found_layouts: Dict[str, List[str]] = collections.defaultdict(list)  # layout -> folders holding it
    image_files = []
    datasets: List[str] = []
    synthetic: List[str] = []

    searched = set()
    beside: Dict[str, List[Entry]] = {}  # dataset folder -> its children that hold other data

    def find(folder: str, name: str, depth: int) -> Dict[str, str]:
        """{folder: layout} of the datasets in or below a folder, from listings alone (nothing is
        recorded): by content first; a folder whose own name says "CK+48", "jaffe..." or "ferg..."
        counts only when nothing below it does (so jaffe/jaffe/ finds the inner one, and a
        misnamed image in a CK+48/ folder is reported, not ignored). Each folder is searched once
        (symlinks that lead back up cost nothing)."""
        if walker.identity(folder) in searched:
            return {}
        searched.add(walker.identity(folder))
        layouts = layouts_in(walker, folder)
        if len(layouts) > 1:
            where = f"the data root {walker.root}" if folder == walker.root else f"{walker.relpath(folder)}/"
            if FER2013_IMAGES in layouts:  # FER2013's images have folders of their own: only the other moves
                others = " and ".join(DESCRIPTION[l] for l in layouts if l != FER2013_IMAGES)
                kept = ", ".join(sorted(posixpath.basename(path) + "/"
                                        for path in dataset_children(walker, FER2013_IMAGES, folder)))
                raise IngestError(f"{where} holds {others} unpacked beside FER2013's image folders ({kept}): the "
                                  f"two would take each other's files for strays. Move {others} into a folder of "
                                  "its own (e.g. jaffe/, CK+48/) under the data root; FER2013's folders can stay.")
            raise IngestError(f"{where} holds {' and '.join(DESCRIPTION[l] for l in layouts)} "
                              "side by side: two datasets unpacked into one folder cannot be told apart file by "
                              "file. Move each into a folder of its own (e.g. jaffe/, CK+48/) under the data root.")
        if layouts:
            return {folder: layouts[0], **find_beside(folder, layouts[0], depth)}
        below: Dict[str, str] = {}
        if depth < MAX_DEPTH:
            for entry in walker.peek(folder):
                if entry.is_dir:
                    below.update(find(entry.path, entry.name, depth + 1))
        if below or depth == 0:
            return below
        layout = layout_of(walker, folder, name, allow_name_hint=True)
        return {folder: layout} if layout else {}

    def find_beside(folder: str, layout: str, depth: int) -> Dict[str, str]:
        """Datasets among a dataset folder's other children: CSVs, and folders or archives holding
        an image dataset or a CSV (CK+ unpacked into the root beside Kaggle's fer2013.tar.gz)."""
        own, found, handed = set(dataset_children(walker, layout, folder)), {}, []
        entries = list(walker.peek(folder))
        if layout == FER2013_IMAGES:  # FER2013's train/ and test/ may hold other data too (train/CK+48/)
            for split in fer2013_split_folders(walker, folder):
                own.update(c.path for c in fer2013_class_folders(walker, split.path))
                entries += walker.peek(split.path)
        for entry in entries:
            if not entry.is_dir and entry.name.lower().endswith(".csv"):
                handed.append(entry)
            elif entry.is_dir and entry.path not in own and depth < MAX_DEPTH:
                below = find(entry.path, entry.name, depth + 1)
                found.update(below)
                if below or holds_csv(entry.path, depth + 1):
                    handed.append(entry)
        beside[folder] = handed
        walker.elsewhere.update(entry.path for entry in handed)
        return found

    csv_below: Dict[str, bool] = {}

    def holds_csv(folder: str, depth: int) -> bool:
        """Whether a CSV lies in or below a folder (or archive), MAX_DEPTH levels at most; each
        folder is looked at once (a symlink back up finds nothing new)."""
        key = walker.identity(folder)
        if key not in csv_below:
            csv_below[key] = False
            entries = walker.peek(folder)
            csv_below[key] = any(not e.is_dir and e.name.lower().endswith(".csv") for e in entries) or (
                depth < MAX_DEPTH and any(e.is_dir and holds_csv(e.path, depth + 1) for e in entries))
        return csv_below[key]

    dataset_folders = find(walker.root, os.path.basename(walker.root), 0)

    def visit(folder: str, depth: int) -> None:
        if folder in dataset_folders:
            layout = dataset_folders[folder]
            found_layouts[layout].append(folder)
            found = list(LISTERS[layout](walker, folder, options))
            image_files.extend(found)
            where = walker.relpath(folder)
            datasets.append(f"{'.' if where == '.' else where}/: {DESCRIPTION[layout]} ({len(found)} images)")
            read(beside.get(folder, ()), depth)
        else:
            read(walker.children(folder), depth)

    def read(entries: List[Entry], depth: int) -> None:
        for entry in entries:
            if entry.is_dir:
                if depth >= MAX_DEPTH:
                    walker.unrecognised(entry.path, f"more than {MAX_DEPTH} levels below the data root: not searched")
                else:
                    visit(entry.path, depth + 1)
            elif entry.name.lower().endswith(".csv"):
                _identify_csv(walker, entry, csv_files, ferplus_files, first_pixels)
            elif entry.name == SYNTHETIC_MARKER:
                synthetic.append(walker.relpath(entry.path))
            elif COMPRESSED_CSV.search(entry.name):
                _compressed_csv(walker, entry)
            else:
                walker.unrecognised(entry.path, "not a dataset file")

    visit(walker.root, 0)
    _fer2013_images_once(walker, image_files)
    for layout, folders in found_layouts.items():
        if len(folders) > 1 and layout != FER2013_IMAGES:  # FER2013's images: by their names, above
            raise IngestError(f"{data_root} holds {DESCRIPTION[layout]} twice: "
                              + " and ".join(walker.relpath(f) for f in folders)
                              + ". Keep one copy under the data root, or point the data root at one of them.")
    notes: List[str] = list(walker.notes)
    if found_layouts.get(CKPLUS48) and any(image.layout == CKPLUS_ORIGINAL for image in image_files):
        notes.append("CK+48 and CK+'s original frames are both ingested: the published CK+48 is cropped from "
                     "those frames, so with both each such face appears twice (as a crop and through the face "
                     "stage), on one side of the split (by subject); keep one to count each face once")
    _fer2013_once(walker, csv_files, found_layouts.get(FER2013_IMAGES, ()))
    csv_tasks = _csv_tasks(walker, csv_files, ferplus_files, options, datasets, notes, first_pixels)
    excluded: Counter = walker.excluded
    image_tasks = _image_tasks(walker, image_files, options, excluded)

    if not (csv_tasks or image_files or ferplus_files or walker.rejects):
        listed = "; ".join(walker.unrecognised_entries[:20]) or "it is empty"
        raise IngestError(f"nothing under {data_root} is a dataset this project reads (FER2013-family CSVs, "
                          f"FER2013's image folders (train/angry/Training_3908.jpg), CK+48/, CK+'s cohn-kanade-images/ "
                          f"+ Emotion/, JAFFE, FERG-DB; folders or .zip/.tar/"
                          f".tar.gz archives): {listed}{_unnamed_fer2013_images(walker.unrecognised_entries)}")
    if synthetic:
        notes.append(f"synthetic faces ({', '.join(synthetic)}): generated by deep-emotion demo-data, not real people")
    return Plan(data_root, csv_tasks, image_tasks, walker.rejects, excluded, walker.unrecognised_entries,
                datasets, notes, bool(synthetic))


def _unnamed_fer2013_images(unrecognised: List[str]) -> str:
    """A hint for FER2013's class folders whose images lack the Usage in their names (repacks that
    renamed Kaggle's files im0.png ...): what is missing, rather than a list of files alone."""
    classes = sorted({entry.split(" (")[0].split("/")[-2].lower() for entry in unrecognised
                      if entry.endswith(" (not a dataset file)") and entry.count("/") >= 1
                      and entry.split(" (")[0].split("/")[-2].lower() in FER2013_FOLDERS})
    if len(classes) < 2:
        return ""
    return (f". Folders named as FER2013's classes ({', '.join(c + '/' for c in classes)}) hold images whose names "
            f"do not start with FER2013's Usage ({', '.join(u + '_<number>' for u in FER2013_USAGE_SPLITS)}, as in "
            "Kaggle's download), which gives each face its split: such a repack cannot be split as FER2013 is")


# A CSV compressed on its own (not in a tar or zip, which are read in place): fer2013.csv.gz.
COMPRESSED_CSV = re.compile(r"\.csv\.(gz|bz2|xz)$", re.IGNORECASE)


def _compressed_csv(walker: DataRootWalker, entry: Entry) -> None:
    """Named, not read: a stream compressed file has no member list to bound what it expands to, and
    the fix is one command. A FER2013 file's own name so compressed stops the run (the user meant it)."""
    tool = {"gz": "gunzip", "bz2": "bunzip2", "xz": "unxz"}[COMPRESSED_CSV.search(entry.name).group(1).lower()]
    fix = f"not read: decompress it ({tool} {entry.name}), or put it in a .zip or .tar.gz, which are read in place"
    if COMPRESSED_CSV.sub(".csv", entry.name).lower() in LAYOUT_BY_FILE_NAME:
        walker.reject("fer2013", entry.path, f"a compressed CSV, {fix}", fatal=True)
    else:
        walker.unrecognised(entry.path, f"a compressed CSV, {fix}")


def _identify_csv(walker: DataRootWalker, entry: Entry, csv_files, ferplus_files, first_pixels) -> None:
    known_name = entry.name.lower() in LAYOUT_BY_FILE_NAME
    try:
        header, first = read_head(entry.path)
    except OSError as error:  # a known file lost whole (a damaged archive member) is fatal, as its rows are
        walker.reject("fer2013", entry.path, f"cannot read the file: {error}", fatal=known_name)
        return
    except csv.Error as error:  # NUL bytes (UTF-16, a binary file named .csv), a stray carriage return
        if known_name:
            walker.reject("fer2013", entry.path, f"not a readable CSV on its first line ({error}); FER2013's "
                                                 "CSVs are UTF-8 or ASCII text", fatal=True)
        else:
            walker.unrecognised(entry.path, f"not a readable CSV ({error})")
        return
    if not header:
        if known_name:
            walker.reject("fer2013", entry.path, "empty file: no header, no rows (an interrupted download? "
                                                 "download it again)", fatal=True)
        else:
            walker.unrecognised(entry.path, "empty CSV")
        return
    layout, missing = identify_csv(entry.name, header)
    shown = ",".join(c.strip() for c in header)[:80]
    if layout is None:
        walker.unrecognised(entry.path, f"CSV with columns {shown}")
    elif missing and len(missing) == len(layout.columns) and header[0].strip().lstrip("\ufeff").isdigit():
        walker.reject("fer2013", entry.path, f"no header line: the first line is a row ({shown[:40]}...); "
                                             f"{entry.name} starts with the header {','.join(layout.columns)}",
                      fatal=True)
    elif missing:
        walker.reject("fer2013", entry.path, f"missing column(s) {', '.join(missing)}: the header has {shown}",
                      fatal=True)
    elif layout is FERPLUS:
        ferplus_files.append(entry)
    else:
        csv_files.append((entry, layout))
        pixels = [i for i, column in enumerate(header) if column.strip().lower() == "pixels"]
        if first and pixels and len(first) > pixels[0] and first[pixels[0]].strip():
            first_pixels[entry.path] = first[pixels[0]].strip()


def _fer2013_images_once(walker: DataRootWalker, image_files) -> None:
    """Each of FER2013's images once. Kaggle's download is in parts that may lie apart (train.zip and
    test.zip), so copies are told by what names a face, its class folder and its name without the
    extension (angry/Training_10118481), not by the folders holding them: train.zip beside the train/
    unpacked from it, or two copies of the class folders, are an error naming one face twice."""
    seen: Dict[Tuple[str, str], str] = {}
    for image in image_files:
        if image.layout == FER2013_IMAGES:
            face = (image.emotion, posixpath.splitext(posixpath.basename(image.path))[0].lower())
            if face in seen:
                raise IngestError(f"{walker.root} holds FER2013's images twice: {walker.relpath(seen[face])} and "
                                  f"{walker.relpath(image.path)} are one face (a download and a copy of it, or the "
                                  "folders unpacked beside their zip). Keep one copy under the data root.")
            seen[face] = image.path


def _fer2013_once(walker: DataRootWalker, csv_files, image_folders) -> None:
    """FER2013 as images and as rows (a CSV with FER2013's Usage column whatever its name, Kaggle's
    train.csv) are the same faces twice, under names that cannot be matched (the images' numbers are
    not row numbers): an error naming both, as two copies of one CSV are."""
    rows = [e for e, layout in csv_files
            if layout is USAGE_SPLIT or (layout is LABELLED and e.name.lower() == "train.csv")]
    if image_folders and rows:
        raise IngestError(f"{walker.root} holds FER2013 twice: as images in "
                          f"{', '.join(walker.relpath(f) + '/' for f in image_folders)} and as rows in "
                          f"{', '.join(walker.relpath(e.path) for e in rows)} (Kaggle's image download is the same "
                          "35,887 faces as fer2013.csv). Keep one copy under the data root.")


def _csv_tasks(walker, csv_files, ferplus_files, options, datasets, notes, first_pixels) -> List[CsvTask]:
    """One task per CSV; with use_ferplus_labels each fer2013new.csv relabels the file beside it.

    FER2013 comes whole (fer2013.csv, or icml_face_data.csv in Kaggle's competition download) and in
    parts (Kaggle's train.csv: the Training rows): two whole copies are an error, and a train.csv
    beside a whole copy (as in the competition download), or starting with its first row wherever
    it is, is counted and left out, so that no face is ingested twice (or lands in train through one
    file and in test through the other). Other labelled CSVs that start with the same row are one
    dataset twice (a browser's "fer2013 (1).csv"): an error naming both.
    """
    whole = [e for e, layout in csv_files if layout is USAGE_SPLIT and e.name.lower() in FER2013_FILE_NAMES]
    if len(whole) > 1:
        raise IngestError(f"{walker.root} holds FER2013 twice: {' and '.join(walker.relpath(e.path) for e in whole)} "
                          "(fer2013.csv and icml_face_data.csv are the same 35,887 faces; a fer2013.tar.gz and the "
                          "folder unpacked from it are two copies). Keep one copy under the data root.")
    whole_of: Dict[str, Entry] = {}  # a Kaggle train.csv -> the whole copy it repeats
    for e, layout in csv_files:
        if layout is LABELLED and e.name.lower() == "train.csv":
            repeated = [w for w in whole if posixpath.dirname(w.path) == posixpath.dirname(e.path)] or [
                w for w, w_layout in csv_files if w_layout is USAGE_SPLIT and e.path in first_pixels
                and first_pixels.get(w.path) == first_pixels[e.path]]
            if repeated:
                whole_of[e.path] = repeated[0]
    excluded = {path: f"Kaggle's train.csv, FER2013's Training rows again (ingested from {walker.relpath(w.path)})"
                for path, w in whole_of.items()}
    same_start = collections.defaultdict(list)
    for e, layout in csv_files:
        if layout is not UNLABELLED and e.path not in excluded and e.path in first_pixels:
            same_start[first_pixels[e.path]].append(e)
    for copies in same_start.values():
        if len(copies) > 1:
            raise IngestError(f"{walker.root} holds the same faces twice: "
                              f"{' and '.join(walker.relpath(e.path) for e in copies)} start with the same row "
                              "(copies of one file, e.g. a browser's second download). Keep one copy under the data "
                              "root.")
    for entry, layout in csv_files:
        datasets.append(f"{walker.relpath(entry.path)}: "
                        + (f"left out: {excluded[entry.path]}" if entry.path in excluded else layout.description))
    ferplus_for: Dict[str, str] = {}
    for ferplus in ferplus_files:
        folder = os.path.dirname(ferplus.path)
        partners = [e for e, layout in csv_files if layout is USAGE_SPLIT and os.path.dirname(e.path) == folder]
        partners.sort(key=lambda e: e.name.lower() != "fer2013.csv")  # fer2013.csv first, then icml_face_data.csv
        if not options.use_ferplus_labels:
            datasets.append(f"{walker.relpath(ferplus.path)}: FER+ votes, not used (use_ferplus_labels is off)")
        elif not partners:
            raise IngestError(f"use_ferplus_labels is set but {ferplus.path} has no fer2013.csv or "
                              "icml_face_data.csv beside it (FER+ labels rows by their order in that file)")
        else:
            ferplus_for[partners[0].path] = ferplus.path
            datasets.append(f"{walker.relpath(ferplus.path)}: FER+ majority-vote labels for "
                            f"{walker.relpath(partners[0].path)}")
    if options.use_ferplus_labels and not ferplus_files:
        raise IngestError(f"use_ferplus_labels is set but there is no fer2013new.csv under {walker.root}")
    labelled = [e for e, layout in csv_files if layout is not UNLABELLED and e.path not in excluded]
    if len(labelled) > 1:
        notes.append(f"{', '.join(walker.relpath(e.path) for e in labelled)} were all ingested: if they are versions "
                     "of one dataset, each face appears more than once; keep one")
    for entry, layout in csv_files:
        if options.use_ferplus_labels and layout is USAGE_SPLIT and entry.path not in ferplus_for:
            notes.append(f"{walker.relpath(entry.path)} keeps its FER2013 labels (no fer2013new.csv beside it)")
    return [CsvTask(entry.path, walker.relpath(entry.path), layout.name, ferplus_for.get(entry.path),
                    excluded.get(entry.path))
            for entry, layout in csv_files]


def _image_tasks(walker, image_files, options, excluded) -> List[ImageTask]:
    """Labels mapped to FER2013 ids and each subject assigned to one split, per source (CK+48 and the
    original CK+ layout share the source "ckplus": a subject stays on one side in both); FER2013's
    images keep their own split."""
    tasks = []
    for source in sorted({f.source for f in image_files}):
        kept = []
        for image in (f for f in image_files if f.source == source):
            emotion = options.emotion_id(image.emotion)
            if emotion is None:
                excluded[(source, CONTEMPT_EXCLUDED)] += 1
            else:
                kept.append((image, emotion))
        split_of = assign_subjects(collections.Counter(image.subject for image, _ in kept if image.split is None),
                                   options.split_fractions, options.split_seed)
        tasks.extend(ImageTask(image.path, walker.relpath(image.path), source, emotion, image.subject,
                               image.split or split_of[image.subject], face_crop=image.layout in options.face_crop,
                               own_split=image.split is not None)
                     for image, emotion in kept)
    return tasks

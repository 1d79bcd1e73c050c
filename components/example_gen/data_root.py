"""Finding what a data root holds, before any record is read.

Every entry under the root ends up in exactly one place of the Plan: a CSV task, an image task,
an exclusion count (CK+ contempt), a Reject (a defect found by listing), or the list of
unrecognised entries that reports name. Nothing is skipped silently. Symlinks are followed only
while they stay inside the root.
"""
import collections
import dataclasses
import os
from typing import Counter, Dict, List, Tuple

from components.example_gen import files
from components.example_gen.fer2013_csv import (FERPLUS, LAYOUT_BY_FILE_NAME, UNLABELLED, USAGE_SPLIT, CsvTask,
                                                identify_csv, read_header)
from components.example_gen.image_folders import LISTERS, ImageTask, image_dataset_of
from components.example_gen.options import CONTEMPT_EXCLUDED, IngestOptions
from components.example_gen.records import IngestError, Reject
from components.example_gen.subject_split import assign_subjects
from contract.data import SYNTHETIC_MARKER


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    path: str
    is_dir: bool


class DataRootWalker:
    """Lists folders under one root, recording rejects and unrecognised entries as it goes."""

    def __init__(self, root: str):
        self.root = root.rstrip("/") or "/"
        self.rejects: List[Reject] = []
        self.unrecognised_entries: List[str] = []
        self._local = files.is_local(root)
        self._real_root = os.path.realpath(root) if self._local else None
        self._visited_dirs = {self._real_root}

    def relpath(self, path: str) -> str:
        if self._local:
            return os.path.relpath(path, self.root)
        return path[len(self.root):].lstrip("/")

    def reject(self, source: str, path: str, defect: str) -> None:
        self.rejects.append(Reject(source, path, None, defect))

    def unrecognised(self, path: str, why: str) -> None:
        self.unrecognised_entries.append(f"{self.relpath(path)} ({why})")

    def children(self, folder: str, source: str = "data root") -> List[Entry]:
        if not self._local:
            return [Entry(name, os.path.join(folder, name), is_dir) for name, is_dir in files.list_dir(folder)]
        entries = []
        try:
            with os.scandir(folder) as scan:
                found = sorted(scan, key=lambda e: e.name)
        except OSError as error:
            self.reject(source, folder, f"cannot list the folder: {error.strerror}")
            return []
        for item in found:
            if item.is_symlink():
                target = os.path.realpath(item.path)
                if os.path.commonpath([target, self._real_root]) != self._real_root:
                    self.reject(source, item.path, f"symlink leads outside the data root, to {target}")
                    continue
                if not os.path.exists(target):
                    self.reject(source, item.path, f"broken symlink, to {target}")
                    continue
            is_dir = item.is_dir()  # follows a symlink that stays inside the root
            if is_dir:
                real = os.path.realpath(item.path)
                if real in self._visited_dirs:
                    self.unrecognised(item.path, "folder already listed (symlink loop)")
                    continue
                self._visited_dirs.add(real)
            elif not item.is_file():
                self.unrecognised(item.path, "not a regular file")
                continue
            entries.append(Entry(item.name, item.path, is_dir))
        return entries


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
    """Lists the data root (cheap: names, CSV headers) and decides every image's split."""
    if not files.exists(data_root):
        raise IngestError(f"data root {data_root} does not exist")
    walker = DataRootWalker(data_root)
    csv_files: List[Tuple[Entry, object]] = []
    ferplus_files: List[Entry] = []
    image_files = []
    datasets: List[str] = []
    synthetic: List[str] = []

    def visit(folder: str, name: str) -> None:
        source = image_dataset_of(name)
        if source:
            found = list(LISTERS[source](walker, folder))
            image_files.extend(found)
            datasets.append(f"{walker.relpath(folder)}/: {source} image folder ({len(found)} images)")
            return
        for entry in walker.children(folder):
            if entry.is_dir:
                visit(entry.path, entry.name)
            elif entry.name.lower().endswith(".csv"):
                _identify_csv(walker, entry, csv_files, ferplus_files)
            elif entry.name == SYNTHETIC_MARKER:
                synthetic.append(walker.relpath(entry.path))
            else:
                walker.unrecognised(entry.path, "not a dataset file")

    visit(walker.root, os.path.basename(walker.root))
    for entry, layout in csv_files:
        datasets.append(f"{walker.relpath(entry.path)}: {layout.description}")
    notes: List[str] = []
    csv_tasks = _csv_tasks(walker, csv_files, ferplus_files, options, datasets, notes)
    excluded: Counter = collections.Counter()
    image_tasks = _image_tasks(walker, image_files, options, excluded)

    if not (csv_tasks or image_files or ferplus_files or walker.rejects):
        listed = "; ".join(walker.unrecognised_entries[:20]) or "it is empty"
        raise IngestError(f"nothing under {data_root} is a dataset this project reads (FER2013-family CSVs, "
                          f"CK+48/, jaffe/, FERG_DB_256/): {listed}")
    if synthetic:
        notes.append(f"synthetic faces ({', '.join(synthetic)}): generated by deep-emotion demo-data, not real people")
    return Plan(data_root, csv_tasks, image_tasks, walker.rejects, excluded, walker.unrecognised_entries,
                datasets, notes, bool(synthetic))


def _identify_csv(walker: DataRootWalker, entry: Entry, csv_files, ferplus_files) -> None:
    try:
        header = read_header(entry.path)
    except OSError as error:
        walker.reject("fer2013", entry.path, f"cannot read the file: {error}")
        return
    known_name = entry.name.lower() in LAYOUT_BY_FILE_NAME
    if not header:
        if known_name:
            walker.reject("fer2013", entry.path, "empty file: no header, no rows")
        else:
            walker.unrecognised(entry.path, "empty CSV")
        return
    layout, missing = identify_csv(entry.name, header)
    if layout is None:
        walker.unrecognised(entry.path, f"CSV with columns {','.join(c.strip() for c in header)[:80]}")
    elif missing:
        walker.reject("fer2013", entry.path, f"missing column(s) {', '.join(missing)}: the header has "
                                             f"{','.join(c.strip() for c in header)[:80]}")
    elif layout is FERPLUS:
        ferplus_files.append(entry)
    else:
        csv_files.append((entry, layout))


def _csv_tasks(walker, csv_files, ferplus_files, options, datasets, notes) -> List[CsvTask]:
    """One task per CSV; with use_ferplus_labels each fer2013new.csv relabels the file beside it."""
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
    labelled = [e for e, layout in csv_files if layout is not UNLABELLED]
    if len(labelled) > 1:
        notes.append(f"{', '.join(walker.relpath(e.path) for e in labelled)} were all ingested: if they are versions "
                     "of one dataset (as fer2013.csv, icml_face_data.csv and Kaggle's train.csv are), each face "
                     "appears more than once; keep one")
    for entry, layout in csv_files:
        if options.use_ferplus_labels and layout is USAGE_SPLIT and entry.path not in ferplus_for:
            notes.append(f"{walker.relpath(entry.path)} keeps its FER2013 labels (no fer2013new.csv beside it)")
    return [CsvTask(entry.path, walker.relpath(entry.path), layout.name, ferplus_for.get(entry.path))
            for entry, layout in csv_files]


def _image_tasks(walker, image_files, options, excluded) -> List[ImageTask]:
    """Labels mapped to FER2013 ids and each subject assigned to one split, per source."""
    tasks = []
    for source in sorted({f.source for f in image_files}):
        kept = []
        for image in (f for f in image_files if f.source == source):
            emotion = options.emotion_id(image.emotion)
            if emotion is None:
                excluded[(source, CONTEMPT_EXCLUDED)] += 1
            else:
                kept.append((image, emotion))
        split_of = assign_subjects(collections.Counter(image.subject for image, _ in kept),
                                   options.split_fractions, options.split_seed)
        tasks.extend(ImageTask(image.path, walker.relpath(image.path), source, emotion, image.subject,
                               split_of[image.subject]) for image, emotion in kept)
    return tasks

"""The FER2013 family of CSVs: fer2013.csv, icml_face_data.csv, Kaggle train.csv / test.csv, FER+.

A file is read by one DoFn call, streamed row by row with the csv module (exact line numbers for
errors; quoting, CRLF, a UTF-8 BOM and " emotion"-style headers handled), so memory stays flat
whatever the file size. Rows are collected in small batches whose pixels are parsed and checked
with Arrow compute and encoded to tf.Example in C++ (records.encode_examples); a batch holding any
bad row is re-parsed row by row to name each defect.

Rows are named by their line in the file (the header is line 1): errors say "fer2013.csv line 7",
and the example's image_id is "fer2013.csv:7". FER2013 has no subject ids: `subject` is "".

A bad row is one bad record; what loses the rest of a file is fatal, whatever the bad-record budget:
a file that ends mid-row (an interrupted download: fer2013.csv is ordered Training, PublicTest,
PrivateTest, so a cut loses whole splits), one with a header and no rows, one that cannot be read on
(a damaged archive member), and FER+ labels out of step with the rows they label.
"""
import collections
import contextlib
import csv
import dataclasses
from typing import Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.example_gen import files
from components.example_gen.options import CONTEMPT_EXCLUDED, IngestOptions
from components.example_gen.records import Reject, encode_examples
from components.example_gen.subject_split import split_by_content
from contract.data import EMOTIONS, FER2013_USAGE_SPLITS, FERPLUS_TO_EMOTION, FERPLUS_VOTES, NUM_PIXELS

SOURCE = "fer2013"


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    name: str
    columns: Tuple[str, ...]  # as documented; headers are matched case- and space-insensitively
    description: str


USAGE_SPLIT = CsvLayout("fer2013", ("emotion", "pixels", "Usage"),
                        "FER2013 rows, split by Usage (Training/PublicTest/PrivateTest)")
LABELLED = CsvLayout("labelled", ("emotion", "pixels"),
                     "labelled rows without Usage (Kaggle train.csv), split by a hash of the pixels")
UNLABELLED = CsvLayout("unlabelled", ("pixels",),
                       "unlabelled rows (Kaggle test.csv): counted, never used for training or evaluation")
FERPLUS = CsvLayout("ferplus", ("Usage", "Image name") + FERPLUS_VOTES,
                    "FER+ votes for the fer2013.csv beside it")
LAYOUTS = (FERPLUS, USAGE_SPLIT, LABELLED, UNLABELLED)  # most specific first
LAYOUT_BY_FILE_NAME = {"fer2013.csv": USAGE_SPLIT, "icml_face_data.csv": USAGE_SPLIT,
                       "train.csv": LABELLED, "test.csv": UNLABELLED, "fer2013new.csv": FERPLUS}
FER2013_FILE_NAMES = ("fer2013.csv", "icml_face_data.csv")  # the whole dataset, each (same faces, same order)
GENERIC_FILE_NAMES = ("train.csv", "test.csv")  # other datasets' files too: ours only by their header
_BATCH_ROWS = 256


def _key(column: str) -> str:
    return column.strip().lstrip("\ufeff").strip().lower()


def read_head(path: str) -> Tuple[Optional[List[str]], Optional[List[str]]]:
    """The header's column names (None for an empty file; csv.Error when unreadable) and the first
    data row's fields (None when there is none, or the csv module cannot read it: the reader names
    that row later). The first row tells two copies of one dataset apart from two datasets."""
    with files.open_binary(path) as f:
        rows = _csv_rows(_Lines(f))
        header = next(rows, None)
        try:
            first = next((row for row in rows if any(field.strip() for field in row)), None)
        except csv.Error:
            first = None
        return header, first


def identify_csv(file_name: str, header: Sequence[str]) -> Tuple[Optional[CsvLayout], Tuple[str, ...]]:
    """(layout, missing columns) of a CSV, from its name and header; (None, ()) if not ours.

    A known file name sets what the header must hold (fer2013.csv without Usage is an error, not
    a Kaggle train.csv; a fer2013.csv whose header has none of its columns is an error too, never
    skipped, where a train.csv or test.csv like that is someone else's); any other name is
    recognised by its header alone.
    """
    have = {_key(c) for c in header}

    def missing(layout):
        return tuple(c for c in layout.columns if _key(c) not in have)

    by_header = next((layout for layout in LAYOUTS if not missing(layout)), None)
    expected = LAYOUT_BY_FILE_NAME.get(file_name.lower())
    if expected is None:
        return by_header, ()
    if by_header is not None and set(expected.columns) <= set(by_header.columns):
        return by_header, ()
    if len(missing(expected)) < len(expected.columns) or file_name.lower() not in GENERIC_FILE_NAMES:
        return expected, missing(expected)  # meant to be this format, but incomplete (or no header at all)
    return None, ()  # someone else's train.csv


def ferplus_majority(votes: Sequence[int]) -> Optional[str]:
    """The FER+ column that wins the vote, or None when none does.

    FERPlus's own rule (microsoft/FERPlus src/ferplus.py, "majority" mode): single votes are
    dropped as outliers, then a column must hold more than half of the remaining votes.
    """
    kept = [v if v > 1 else 0 for v in votes]
    best = max(range(len(kept)), key=kept.__getitem__)
    return FERPLUS_VOTES[best] if kept[best] * 2 > sum(kept) else None


def ferplus_shares(votes: Sequence[int], emotion_id) -> Optional[np.ndarray]:
    """The vote distribution over the seven FER2013 classes (float32 [7]), FERPlus's "probability"
    mode: single votes dropped as outliers, then the shares of the votes for a class we keep
    (unknown, not-a-face and unmapped contempt are no class). None when no such vote is left.

    emotion_id: FER+ emotion name -> FER2013 id or None (IngestOptions.emotion_id via FERPLUS_TO_EMOTION).
    """
    shares = np.zeros(len(EMOTIONS), np.float32)
    for column, count in zip(FERPLUS_VOTES, votes):
        target = emotion_id(FERPLUS_TO_EMOTION[column]) if column in FERPLUS_TO_EMOTION else None
        if count > 1 and target is not None:
            shares[target] += count
    total = shares.sum()
    return shares / total if total else None


class PixelCountError(ValueError):
    """Too few or too many pixel values: what a truncated line looks like."""


def parse_pixels(text: str) -> np.ndarray:
    """One row's pixel string as int64[NUM_PIXELS]; ValueError naming the defect otherwise."""
    tokens = text.split()
    for position, token in enumerate(tokens, 1):
        digits = token[1:] if token[:1] in "+-" else token
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"pixel value {position} is not a number: {token[:20]!r}")
    if len(tokens) != NUM_PIXELS:
        raise PixelCountError(f"{len(tokens)} pixel values, expected {NUM_PIXELS}")
    values = [int(t) for t in tokens]
    for position, value in enumerate(values, 1):
        if not 0 <= value <= 255:  # checked before the int64 array: 10**20 must be a defect, not an OverflowError
            shown = str(value) if len(str(value)) <= 20 else f"{str(value)[:20]}..."
            raise ValueError(f"pixel value {position} is {shown}, outside 0..255")
    return np.array(values, dtype=np.int64)


_CLEAN_ROW = r"^[0-9]{1,3}( [0-9]{1,3})*$"  # FER2013's own layout: decimal values, single spaces


def _parse_pixel_batch(texts: List[str]) -> Optional[np.ndarray]:
    """All rows' pixels as int64[n, NUM_PIXELS] when every row is clean, else None (the caller then
    reads row by row with parse_pixels, which names each defect). Rows are checked against
    _CLEAN_ROW first: Arrow's string-to-int cast also takes "0x1F", "+7" and surrounding spaces."""
    array = pa.array(texts, pa.string())
    if not pc.all(pc.match_substring_regex(array, _CLEAN_ROW)).as_py():
        return None
    try:
        values = pc.split_pattern(array, " ").cast(pa.list_(pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if pc.min_max(pc.list_value_length(values)).as_py() != {"min": NUM_PIXELS, "max": NUM_PIXELS}:
        return None
    flat = values.flatten()
    low_high = pc.min_max(flat).as_py()
    if low_high["min"] < 0 or low_high["max"] > 255:
        return None
    return flat.to_numpy().reshape(len(texts), NUM_PIXELS)


MAX_LINE_BYTES = 1 << 20  # a FER2013 row is under 10 KB; a longer line is not one (and is never held whole)


class CsvSyntaxError(csv.Error):
    """The csv module cannot go on reading a file (it cannot resync after this): at `line` of `path`."""

    def __init__(self, line: int, message: str, path: Optional[str] = None):
        super().__init__(f"line {line}: {message}")
        self.line, self.path = line, path


class CsvReadError(OSError):
    """The file's bytes stop coming after `line` (a damaged archive member, an I/O error): the rest is lost."""

    def __init__(self, line: int, error: OSError, path: Optional[str] = None):
        super().__init__(f"reading stopped after line {line:,}: {error}")
        self.line, self.error, self.path = line, error, path


class _Lines:
    """A binary file's lines as text, remembering whether the latest one ended with a newline.

    Undecodable bytes become U+FFFD, so they surface as a defect of their own row. A line over
    MAX_LINE_BYTES stops the file (CsvSyntaxError) before more than that is read into memory: a
    download's CSV is untrusted input, and one without line breaks would otherwise be held whole.
    """

    def __init__(self, binary_file, path: Optional[str] = None):
        self._file = binary_file
        self.path = path
        self.newline_at_end = True
        self.lines_read = 0

    def __iter__(self) -> Iterator[str]:
        encoding = "utf-8-sig"  # drops a byte-order mark at the very start only
        while True:
            try:
                raw = self._file.readline(MAX_LINE_BYTES + 1)
            except OSError as error:  # archives.DamagedMember too: a bad CRC, a broken deflate stream
                raise CsvReadError(self.lines_read, error, self.path) from error
            if not raw:
                return
            self.lines_read += 1
            if len(raw) > MAX_LINE_BYTES:
                raise CsvSyntaxError(self.lines_read, f"longer than {MAX_LINE_BYTES:,} bytes, where a FER2013 "
                                                      "row is under 10 KB: not a FER2013 CSV, or a file without "
                                                      "line breaks", self.path)
            self.newline_at_end = raw.endswith(b"\n")
            yield raw.decode(encoding, errors="replace")
            encoding = "utf-8"


def _csv_rows(lines: _Lines) -> Iterator[List[str]]:
    """csv.reader over the lines, its errors raised as CsvSyntaxError naming the line."""
    reader = csv.reader(lines)
    try:
        yield from reader
    except CsvSyntaxError:
        raise
    except csv.Error as error:
        hint = (" (an unclosed quote makes the rest of the file one field)" if "field limit" in str(error) else "")
        raise CsvSyntaxError(lines.lines_read, f"{error}{hint}", lines.path) from error


_TRUNCATED = "truncated last line (the file ends without a newline): "
_CUT = "; the file ends mid-row: an interrupted download or copy, and the rest of the file is lost: download it again"


class _Fatal(str):
    """A defect that loses the rest of a file: no bad-record budget excuses it."""


@dataclasses.dataclass(frozen=True)
class _Row:
    line: int           # where the record starts
    fields: List[str]
    note: str           # "" or what any defect of this row is prefixed with
    unterminated: bool  # the file's last line, without a newline: a missing field or pixel means truncation

    def short_defect(self, defect: str, short: bool = True) -> str:
        """A defect of too few / too many fields or values. Too few on the last line, without a newline,
        is where a download stopped (a complete last row without a newline is a row like any other)."""
        if self.unterminated and short:
            return _Fatal(_TRUNCATED + self.note + defect + _CUT)
        return self.note + defect


class _Rows:
    """A CSV's normalised header, then its data rows (blank and whitespace-only lines skipped)."""

    def __init__(self, binary_file, path: Optional[str] = None):
        self._lines = _Lines(binary_file, path)
        self._reader = _csv_rows(self._lines)
        self.header = [_key(c) for c in next(self._reader, [])]
        self.columns = {name: i for i, name in enumerate(self.header)}

    def __iter__(self) -> Iterator[_Row]:
        previous = self._lines.lines_read
        for fields in self._reader:
            first, previous = previous + 1, self._lines.lines_read
            if not fields or (len(fields) == 1 and not fields[0].strip()):  # blank, or spaces an editor left
                continue
            note = f"lines {first}-{previous} read as one record (an unclosed quote?): " if previous > first else ""
            yield _Row(first, fields, note, not self._lines.newline_at_end)

    def field_count_defect(self, row: _Row) -> Optional[str]:
        if len(row.fields) == len(self.header):
            return None
        return row.short_defect(f"{len(row.fields)} fields, expected {len(self.header)} ({','.join(self.header)})",
                                short=len(row.fields) < len(self.header))


def _emotion(text: str) -> Tuple[Optional[int], Optional[str]]:
    value = text.strip()
    if not (value.lstrip("+-").isascii() and value.lstrip("+-").isdigit()):
        return None, f"emotion {value[:20]!r} is not a whole number"
    if not 0 <= int(value) < len(EMOTIONS):
        labels = ", ".join(f"{i} {name}" for i, name in enumerate(EMOTIONS))
        return None, f"emotion {int(value)} is outside the label map ({labels})"
    return int(value), None


def _rejected(path: str, line: Optional[int], defect: str, fatal: bool = False):
    fatal = fatal or isinstance(defect, _Fatal)
    yield beam.pvalue.TaggedOutput("rejected", Reject(SOURCE, path, line, str(defect), fatal))
    yield beam.pvalue.TaggedOutput("tally", collections.Counter({("rejected", SOURCE): 1}))


@dataclasses.dataclass
class _Batch:
    rows: List[_Row] = dataclasses.field(default_factory=list)
    texts: List[str] = dataclasses.field(default_factory=list)
    emotions: List[int] = dataclasses.field(default_factory=list)
    splits: List[str] = dataclasses.field(default_factory=list)
    shares: List[np.ndarray] = dataclasses.field(default_factory=list)  # FER+ rows only


@dataclasses.dataclass(frozen=True)
class CsvTask:
    path: str                  # as opened; reports name it
    name: str                  # relative to the data root: image ids use it
    layout: str                # a CsvLayout name
    ferplus_path: Optional[str] = None  # relabel from this fer2013new.csv (same rows, same order)
    excluded: Optional[str] = None      # why its rows are left out (counted, never ingested)


class ReadCsvFile(beam.DoFn):
    """CsvTask -> (split, serialized tf.Example); tagged 'rejected' Rejects and 'tally' Counters."""

    def __init__(self, options: IngestOptions):
        super().__init__()
        self._options = options

    def process(self, task: CsvTask):
        try:
            if task.excluded or task.layout == UNLABELLED.name:
                yield from self._count_excluded(task)
            else:
                yield from self._read_labelled(task)
        except CsvSyntaxError as error:  # e.g. a field over the csv module's size limit: cannot resync
            yield from _rejected(error.path or task.path, error.line, f"CSV syntax error ({error}); the rest of the "
                                                                      "file was not read", fatal=True)
        except CsvReadError as error:  # a damaged archive member (bad CRC, broken deflate stream), an I/O error
            yield from _rejected(error.path or task.path, error.line or None, (
                f"the file cannot be read after {'this line' if error.line else 'its start'}, so the rest of it is "
                f"lost (and what was read may be damaged too): {error.error}"), fatal=True)
        except OSError as error:
            yield from _rejected(task.path, None, f"cannot read the file: {error}", fatal=True)

    def _count_excluded(self, task: CsvTask):
        with files.open_binary(task.path) as f:
            rows = sum(1 for _ in _Rows(f, task.path))
        reason = f"{task.name}: {task.excluded or 'unlabelled (no emotion column)'}, not ingested"
        yield beam.pvalue.TaggedOutput("tally", collections.Counter({("excluded", SOURCE, reason): rows}))

    def _read_labelled(self, task: CsvTask):
        with files.open_binary(task.path) as f, (
                files.open_binary(task.ferplus_path) if task.ferplus_path else contextlib.nullcontext()) as fp:
            rows = _Rows(f, task.path)
            ferplus = _Rows(fp, task.ferplus_path) if fp else None
            ferplus_rows = iter(ferplus) if ferplus else None
            batch, tally, seen = _Batch(), collections.Counter(), 0
            for row in rows:
                seen += 1
                shares = None
                if ferplus_rows is None:
                    emotion, defect = self._checked_row(rows, row)
                    where = (task.path, row.line)
                else:
                    ferplus_row = next(ferplus_rows, None)
                    if ferplus_row is None:
                        yield from _rejected(task.ferplus_path, None, (
                            f"has fewer data rows than {task.path}, which continues at line {row.line}; "
                            "FER+ labels need the same rows in the same order"), fatal=True)
                        return
                    emotion, defect = self._checked_row(rows, row, read_emotion=False)
                    where = (task.path, row.line)
                    out_of_step = self._usage_out_of_step(task, rows, row, ferplus, ferplus_row)
                    if out_of_step:
                        yield from _rejected(task.ferplus_path, ferplus_row.line, out_of_step, fatal=True)
                        return
                    if defect is None:
                        emotion, defect, shares = self._ferplus_emotion(ferplus, ferplus_row, tally)
                        where = (task.ferplus_path, ferplus_row.line)
                        if emotion is None and defect is None:
                            continue  # excluded by the vote, counted in tally
                split = None
                if defect is None:
                    split, defect = self._split(rows, row)
                if defect is not None:
                    yield from _rejected(*where, defect)
                    continue
                batch.rows.append(row)
                batch.texts.append(row.fields[rows.columns["pixels"]])
                batch.emotions.append(emotion)
                batch.splits.append(split)
                if ferplus_rows is not None:
                    batch.shares.append(shares)
                if len(batch.rows) >= _BATCH_ROWS:
                    yield from self._flush(task, batch, tally)
                    batch, tally = _Batch(), collections.Counter()
            if ferplus_rows is not None and next(ferplus_rows, None) is not None:
                yield from _rejected(task.ferplus_path, None, (
                    f"has more data rows than {task.path} ({seen}); FER+ labels need the same rows "
                    "in the same order"), fatal=True)
                return
            if seen == 0:
                yield from _rejected(task.path, None, "header only: no data rows (an interrupted download or "
                                                      "copy?): the whole file is lost; download it again", fatal=True)
            yield from self._flush(task, batch, tally)

    @staticmethod
    def _checked_row(rows: _Rows, row: _Row, read_emotion: bool = True):
        """(emotion id, defect) from the row's own emotion column (not read when FER+ labels it)."""
        defect = rows.field_count_defect(row)
        if defect is None and read_emotion:
            emotion, defect = _emotion(row.fields[rows.columns["emotion"]])
            if defect is None:
                return emotion, None
            defect = row.note + defect
        return None, defect

    @staticmethod
    def _usage_out_of_step(task: CsvTask, rows: _Rows, row: _Row, ferplus: _Rows, ferplus_row: _Row) -> Optional[str]:
        """Why a FER+ row cannot be the FER2013 row it is paired with: fer2013new.csv keeps FER2013's
        Usage, so a disagreement means the files are not in the same order (a sorted or filtered
        fer2013.csv): every label from there on would be another face's. None when they agree."""
        if (rows.field_count_defect(row) or ferplus.field_count_defect(ferplus_row)
                or "usage" not in rows.columns):
            return None  # the row's own defect is reported
        usage = row.fields[rows.columns["usage"]].strip()
        ferplus_usage = ferplus_row.fields[ferplus.columns["usage"]].strip()
        if usage == ferplus_usage or usage not in FER2013_USAGE_SPLITS or ferplus_usage not in FER2013_USAGE_SPLITS:
            return None
        return (f"FER+ labels rows by their order: this row's Usage is {ferplus_usage}, where the row it would "
                f"label, {task.path} line {row.line}, is {usage}; the two files are not in the same order "
                f"({task.name} sorted or filtered?), so every label from here on would be another face's: use both "
                "files as published")

    def _split(self, rows: _Rows, row: _Row) -> Tuple[Optional[str], Optional[str]]:
        if "usage" in rows.columns:
            usage = row.fields[rows.columns["usage"]].strip()
            if usage not in FER2013_USAGE_SPLITS:
                if row.unterminated and any(u.startswith(usage) for u in FER2013_USAGE_SPLITS):
                    return None, row.short_defect(f"Usage {usage!r} is cut short")
                return None, row.note + f"Usage {usage[:30]!r} is not one of {', '.join(FER2013_USAGE_SPLITS)}"
            return FER2013_USAGE_SPLITS[usage], None
        text = row.fields[rows.columns["pixels"]].strip().encode()
        return split_by_content(text, self._options.split_fractions, self._options.split_seed), None

    def _ferplus_emotion(self, ferplus: _Rows, row: _Row, tally: collections.Counter):
        """(emotion id, defect, vote shares) from a FER+ row; (None, None, None) when the vote
        excludes it (counted)."""
        defect = ferplus.field_count_defect(row)
        if defect:
            return None, defect, None
        votes = []
        for column in FERPLUS_VOTES:
            value = row.fields[ferplus.columns[_key(column)]].strip()
            if not (value.isascii() and value.isdigit()):
                return None, row.note + f"{column} vote count {value[:20]!r} is not a whole number", None
            votes.append(int(value))
        winner = ferplus_majority(votes)
        if winner is None:
            reason = "FER+ votes: no majority"
        elif winner == "unknown":
            reason = "FER+ majority: unknown"
        elif winner == "NF":
            reason = "FER+ majority: not a face"
        else:
            emotion = self._options.emotion_id(FERPLUS_TO_EMOTION[winner])
            if emotion is not None:
                return emotion, None, ferplus_shares(votes, self._options.emotion_id)
            reason = f"FER+ majority: {CONTEMPT_EXCLUDED}"
        tally[("excluded", SOURCE, reason)] += 1
        return None, None, None

    def _flush(self, task: CsvTask, batch: _Batch, tally: collections.Counter):
        keep = list(range(len(batch.rows)))
        pixels = _parse_pixel_batch(batch.texts) if keep else None
        if keep and pixels is None:  # some row is bad: find and name each one
            parsed, keep = [], []
            for i, (row, text) in enumerate(zip(batch.rows, batch.texts)):
                try:
                    parsed.append(parse_pixels(text))
                    keep.append(i)
                except PixelCountError as defect:
                    yield from _rejected(task.path, row.line,
                                         row.short_defect(str(defect), short=len(text.split()) < NUM_PIXELS))
                except ValueError as defect:
                    yield from _rejected(task.path, row.line, row.note + str(defect))
            pixels = np.stack(parsed) if parsed else None
        if keep:
            shares = np.stack([batch.shares[i] for i in keep]) if batch.shares else None
            examples = encode_examples(pixels, [batch.emotions[i] for i in keep], SOURCE,
                                       [f"{task.name}:{batch.rows[i].line}" for i in keep], [""] * len(keep),
                                       shares)
            for i, example in zip(keep, examples):
                tally[("example", SOURCE, batch.splits[i], batch.emotions[i])] += 1
                yield batch.splits[i], example
        if tally:
            yield beam.pvalue.TaggedOutput("tally", tally)

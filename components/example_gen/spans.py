"""Span folders under a data root (TFX's `{SPAN}` convention): which spans there are, which a run
ingests, what their files' fingerprint is, and one ingestion Plan over them.

    <data root>/span-1/  span-2/  ...          pattern "span-{SPAN}" (the default)
    <data root>/2024-06-01/  2024-06-02/ ...   pattern "{YYYY}-{MM}-{DD}": span = days since 1970-01-01
                                               (TFX's date_to_span_number)

Each span folder holds any mix of the datasets a data root may hold. A run ingests the latest span,
or the last K spans present (TFX's RangeConfig rolling_range(num_spans=K): the K highest span numbers
that exist, gaps allowed). A root where no folder matches the pattern is ingested whole, as span 0,
exactly as before spans existed.

One home for both orchestrators: locally the ExampleGen's driver resolves the spans before TFX's cache
lookup (driver.py); on Kubeflow, which runs no drivers, the SpanResolver task does
(components/span_resolver). Either way the fingerprint covers every file of the chosen spans, so
the cache follows the data.
"""
import collections
import dataclasses
import hashlib
import json
import os
import re
from typing import Iterator, List, Optional, Sequence, Tuple

from components.example_gen import files
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError

DEFAULT_PATTERN = "span-{SPAN}"
WHOLE_ROOT = 0  # the span number of a root without span folders (TFX's span for a pattern without {SPAN})
_TOKENS = re.compile(r"\{(SPAN(?::(\d+))?|YYYY|MM|DD|VERSION(?::\d+)?)\}")


class SpanPatternError(ValueError):
    """A span pattern TFX's convention does not allow, or span folders that contradict each other."""


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    folder: str  # relative to the data root, e.g. "span-2" or "2024-06-01"


@dataclasses.dataclass(frozen=True)
class Resolution:
    """What one run ingests: its spans (oldest first; none = the whole root) and their fingerprint."""
    spans: Tuple[Span, ...]
    input_fingerprint: str
    outside: Tuple[str, ...] = ()  # top-level entries of a span root that are in no span (not read)
    waiting: Tuple[Span, ...] = ()  # span folders without the ready marker (not read, yet)

    @property
    def span(self) -> int:
        """The latest span ingested (TFX's `span` of the Examples); 0 for a root without spans."""
        return self.spans[-1].number if self.spans else WHOLE_ROOT

    @property
    def folders(self) -> List[str]:
        return [s.folder for s in self.spans]

    def describe(self) -> str:
        return describe(self.spans)


def describe(spans: Sequence[Span]) -> str:
    """'span 2 (span-2/)', 'spans 1-3 (span-1/, span-2/, span-3/)' or 'the whole data root (no span folders)'."""
    if not spans:
        return "the whole data root (no span folders)"
    folders = ", ".join(f"{s.folder}/" for s in spans)
    if len(spans) == 1:
        return f"span {spans[0].number} ({folders})"
    return f"spans {spans[0].number}-{spans[-1].number} ({folders})"


def _compile(pattern: str) -> Tuple[str, "re.Pattern[str]"]:
    """(glob, regex with groups span / year / month / day) of a span pattern, checked as TFX checks it."""
    pattern = pattern.strip("/")
    tokens = [m.group(1) for m in _TOKENS.finditer(pattern)]
    spans = [t for t in tokens if t.startswith("SPAN")]
    dates = [t for t in tokens if t in ("YYYY", "MM", "DD")]
    if any(t.startswith("VERSION") for t in tokens):
        raise SpanPatternError(f"span pattern {pattern!r}: {{VERSION}} is not supported (one folder per span)")
    if (spans and dates) or len(spans) > 1 or (not spans and sorted(dates) != ["DD", "MM", "YYYY"]):
        raise SpanPatternError(f"span pattern {pattern!r}: needs exactly one {{SPAN}} (or {{SPAN:width}}), or "
                               "all of {YYYY}, {MM} and {DD} once each, as TFX's ExampleGen does")
    if "*" in pattern or "?" in pattern or "[" in pattern:
        raise SpanPatternError(f"span pattern {pattern!r}: no wildcards, the tokens are the variable part")
    regex, glob, position = "", "", 0
    for match in _TOKENS.finditer(pattern):
        literal = pattern[position:match.start()]
        regex += re.escape(literal)
        glob += literal
        token, width = match.group(1), match.group(2)
        if token.startswith("SPAN"):
            regex += rf"(?P<span>\d{{{width}}})" if width else r"(?P<span>\d+)"
        else:
            name, digits = {"YYYY": ("year", 4), "MM": ("month", 2), "DD": ("day", 2)}[token]
            regex += rf"(?P<{name}>\d{{{digits}}})"
        glob += "*"
        position = match.end()
    regex += re.escape(pattern[position:])
    glob += pattern[position:]
    return glob, re.compile(regex)


def _span_number(match: "re.Match[str]", folder: str) -> int:
    if match.groupdict().get("span") is not None:
        return int(match.group("span"))
    from tfx.components.example_gen import utils  # pylint: disable=import-outside-toplevel

    try:
        number = utils.date_to_span_number(int(match.group("year")), int(match.group("month")), int(match.group("day")))
    except ValueError as error:
        raise SpanPatternError(f"span folder {folder}/ is not a valid date: {error}") from None
    if number < 0:  # a range starts at span 0 at the earliest: the folder would never be read
        raise SpanPatternError(f"span folder {folder}/ is dated before 1970-01-01: a dated span is numbered by its "
                               "days since then, as in TFX, and cannot be negative; rename the folder")
    return number


def list_spans(data_root: str, pattern: str) -> List[Span]:
    """Every span folder under data_root matching pattern, by span number; two folders of one span fail."""
    glob, regex = _compile(pattern)
    root = data_root.rstrip("/")
    if files.is_local(root):
        import glob as globbing  # pylint: disable=import-outside-toplevel
        candidates = [p for p in globbing.glob(os.path.join(globbing.escape(root), glob)) if os.path.isdir(p)]
    else:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        candidates = [p.rstrip("/") for p in tf.io.gfile.glob(f"{root}/{glob}") if tf.io.gfile.isdir(p)]
    by_number = collections.defaultdict(list)
    for path in candidates:
        folder = path[len(root):].strip("/")
        match = regex.fullmatch(folder)
        if match:
            by_number[_span_number(match, folder)].append(folder)
    clashes = {n: sorted(f) for n, f in by_number.items() if len(f) > 1}
    if clashes:
        number, folders = sorted(clashes.items())[0]
        raise SpanPatternError(f"span {number} is in more than one folder under {data_root}: "
                               f"{', '.join(folders)}; keep one folder per span")
    return [Span(number, folders[0]) for number, folders in sorted(by_number.items())]


def rolling_range(num_spans: int):
    """TFX's RangeConfig for "the last num_spans spans"."""
    from tfx.proto import range_config_pb2  # pylint: disable=import-outside-toplevel

    return range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=num_spans))


def select(found: Sequence[Span], range_config=None) -> Tuple[Span, ...]:
    """The spans a RangeConfig picks among those present, as TFX's span resolvers read it:
    rolling_range: the last num_spans (at least 1) from start_span_number on; static_range: every
    span present in [start, end]. None: the latest span."""
    kind = range_config.WhichOneof("range") if range_config is not None else None
    if kind == "static_range":
        start, end = range_config.static_range.start_span_number, range_config.static_range.end_span_number
        chosen = tuple(s for s in found if start <= s.number <= end)
        if found and not chosen:
            raise SpanPatternError(f"no span in the static range {start}-{end}; the spans present are "
                                   f"{', '.join(str(s.number) for s in found)}")
        return chosen
    rolling = range_config.rolling_range if kind == "rolling_range" else None
    num_spans = max(1, rolling.num_spans) if rolling is not None else 1
    start = rolling.start_span_number if rolling is not None else 0
    return tuple([s for s in found if s.number >= start][-num_spans:])


def check_ready_marker(name: str) -> str:
    """The ready-marker setting as given ('' = none), or SpanPatternError: a file name, not a path."""
    if name and (name.strip() != name or name in (".", "..") or "/" in name or "\\" in name):
        raise SpanPatternError(f"span ready marker {name!r}: expected a file name such as _SUCCESS (no path, "
                               "no surrounding spaces), or '' for none")
    return name


def resolve(data_root: str, pattern: str = DEFAULT_PATTERN, range_config=None, ready_marker: str = "") -> Resolution:
    """The spans a run ingests (select(...) among the folders matching pattern), with the fingerprint
    of every file in them; the whole root when pattern is empty or no folder matches.

    ready_marker: a file name (Hadoop's _SUCCESS, say) that the job delivering a span writes into its
    folder last. Span folders without it are still being written: they are left for a later run
    (Resolution.waiting), and a rolling range is chosen among the complete ones. No complete span at
    all, or a waiting span inside a static range, is an IngestError, never a fall-back to the whole
    root or a part of the range."""
    if not files.exists(data_root):
        raise IngestError(f"data root {data_root} does not exist")
    found = list_spans(data_root, pattern) if pattern else []
    ready, waiting = split_ready(data_root, found, ready_marker)
    if waiting and not ready:
            raise IngestError(f"no span folder under {data_root} holds the ready marker {ready_marker} yet "
                              f"({', '.join(s.folder + '/' for s in found)}): nothing complete to ingest. The job "
                              f"that delivers a span writes {ready_marker} into its folder when the span is complete")
    if range_config is not None and range_config.WhichOneof("range") == "static_range":
        # A static range names its spans (a backfill): read all of them or none, never a part in silence.
        start, end = range_config.static_range.start_span_number, range_config.static_range.end_span_number
        in_range = [s for s in waiting if start <= s.number <= end]
        if in_range:
            raise IngestError(f"the static span range {start}-{end} holds span folders not complete yet (no "
                              f"{ready_marker}): {', '.join(s.folder + '/' for s in in_range)}. A static range is "
                              "read whole; run again once the job delivering them has written the marker")
    chosen = select(ready, range_config)
    return Resolution(chosen, fingerprint(data_root, chosen), outside(data_root, found) if found else (), waiting)


def split_ready(data_root: str, found: Sequence[Span], ready_marker: str) -> Tuple[Tuple[Span, ...], Tuple[Span, ...]]:
    """(spans holding the ready marker, spans without it); every span is ready when there is no marker."""
    if not check_ready_marker(ready_marker):
        return tuple(found), ()
    root = data_root.rstrip("/")
    ready = tuple(s for s in found if files.is_file(f"{root}/{s.folder}/{ready_marker}"))
    return ready, tuple(s for s in found if s not in ready)


def describe_waiting(waiting: Sequence[Span], ready_marker: str) -> str:
    """The line naming span folders left for a later run."""
    return (f"not complete yet (no {ready_marker}), not read: "
            f"{', '.join(f'span {s.number} ({s.folder}/)' for s in waiting)}")


def outside(data_root: str, found: Sequence[Span]) -> Tuple[str, ...]:
    """Top-level entries of a span root that belong to no span: never read, so named."""
    top_levels = {s.folder.split("/")[0] for s in found}
    return tuple(sorted(name + ("/" if is_dir else "") for name, is_dir in _children(data_root)
                        if name not in top_levels))


_SPAN_LIKE = re.compile(r"^(\d{4}-?\d{2}-?\d{2}|span[-_ ]?\d+)$", re.IGNORECASE)  # 2026-12-01, 20261201, span_2, Span-3


def span_like_folders(data_root: str) -> Tuple[str, ...]:
    """Top-level folders named as spans usually are (dates, span_2, Span-3): in a root where the span
    pattern matched nothing, the user most likely meant them as spans and set no pattern for them."""
    return tuple(name + "/" for name, is_dir in _children(data_root) if is_dir and _SPAN_LIKE.match(name))


def _children(folder: str) -> List[Tuple[str, bool]]:
    if files.is_local(folder):
        with os.scandir(folder) as entries:
            return sorted((e.name, e.is_dir()) for e in entries)
    return files.list_dir(folder)


# --- fingerprints -----------------------------------------------------------------------------------
def _local_files(root: str) -> Iterator[Tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file, following symlinks once and only while they
    stay inside the root, as ingestion does: a link out of the root (to /usr, to /) counts as itself
    and is not walked (ingestion refuses it), and a file that vanishes meanwhile is left out."""
    real_root = os.path.realpath(root)
    seen = {real_root}
    for folder, dirs, names in os.walk(root, followlinks=True):
        followed = []
        for name in sorted(dirs):
            real = os.path.realpath(os.path.join(folder, name))
            if os.path.commonpath([real, real_root]) != real_root:
                names.append(name)
            elif real not in seen:
                seen.add(real)
                followed.append(name)
        dirs[:] = followed
        for name in sorted(names):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # a broken symlink: ingestion names it; here its own existence counts
                try:
                    stat = os.lstat(path)
                except OSError:  # gone since the folder was listed
                    continue
            yield os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns


def _remote_files(root: str) -> Iterator[Tuple[str, int, int]]:
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel

    for folder, _, names in fileio.walk(root):
        for name in sorted(names):
            path = os.path.join(folder, name)
            stat = fileio.stat(path)
            yield path[len(root):].lstrip("/"), stat.length, stat.mtime_nsec


def fingerprint_data_root(root: str) -> str:
    """A short string that changes when any file under root is added, removed, resized or touched.

    TFX's own fingerprint (io_utils.generate_fingerprint) covers only what a split pattern globs,
    one level deep, with mtimes in whole seconds: an image replaced inside CK+48/anger/ would not
    change it, and a stale cached ExampleGen output would be reused.
    """
    digest = hashlib.sha256()
    count = total_bytes = 0
    for relative, size, mtime in (_local_files if files.is_local(root) else _remote_files)(root):
        digest.update(f"{relative}\t{size}\t{mtime}\n".encode())
        count += 1
        total_bytes += size
    return f"data_root:{root},num_files:{count},total_bytes:{total_bytes},sha256:{digest.hexdigest()}"


def fingerprint(data_root: str, spans: Sequence[Span]) -> str:
    """The whole root's fingerprint, or one line per span: `span:<n>,` + its folder's fingerprint."""
    if not spans:
        return fingerprint_data_root(data_root)
    return "\n".join(f"span:{s.number}," + fingerprint_data_root(os.path.join(data_root, s.folder)) for s in spans)


# --- how the resolution travels (exec properties, artifact properties) -------------------------------
def span_number(value) -> int:
    """A span number from an exec property: an int locally, text such as "2" on Kubeflow (TFX types a
    parameter fed by an upstream output as STRING), None when unset."""
    return WHOLE_ROOT if value in (None, "") else int(float(value))


def to_json(spans: Sequence[Span]) -> str:
    return json.dumps([{"span": s.number, "folder": s.folder} for s in spans])


def from_json(text: Optional[str]) -> Tuple[Span, ...]:
    """The spans of to_json's text; empty (the whole root) for None or ''."""
    return tuple(Span(int(s["span"]), s["folder"]) for s in json.loads(text or "[]"))


# --- one ingestion plan over several span folders ----------------------------------------------------
def plan_spans(data_root: str, spans: Sequence[Span], options: IngestOptions):
    """The Plan of the whole root (no spans), or of the span folders as one data root: names relative
    to the data root (`span-2/jaffe/KA.AN1.39.tiff`, so image ids stay unique across spans), and the
    subject-disjoint split decided over all spans together, so that a person who appears in two
    spans is in one split only. (Imported here: resolving spans needs none of the dataset readers.)"""
    # pylint: disable=import-outside-toplevel
    from components.example_gen.data_root import Plan, plan_ingestion
    from components.example_gen.subject_split import assign_subjects

    if not spans:
        return plan_ingestion(data_root, options)
    plans = [(s.folder, plan_ingestion(os.path.join(data_root, s.folder), options)) for s in spans]
    csv_tasks = [dataclasses.replace(t, name=f"{folder}/{t.name}") for folder, p in plans for t in p.csv_tasks]
    images = [dataclasses.replace(t, name=f"{folder}/{t.name}") for folder, p in plans for t in p.image_tasks]
    excluded: collections.Counter = collections.Counter()
    for _, p in plans:
        excluded.update(p.excluded)
    split_of = {}
    for source in sorted({t.source for t in images}):
        subjects = collections.Counter(t.subject for t in images if t.source == source and not t.own_split)
        split_of[source] = assign_subjects(subjects, options.split_fractions, options.split_seed)
    image_tasks = [t if t.own_split else dataclasses.replace(t, split=split_of[t.source][t.subject]) for t in images]
    return Plan(
        data_root=data_root, csv_tasks=csv_tasks, image_tasks=image_tasks,
        rejects=[r for _, p in plans for r in p.rejects], excluded=excluded,
        unrecognised=[f"{folder}/{entry}" for folder, p in plans for entry in p.unrecognised],
        # a span folder that is itself the dataset says "./: JAFFE (...)": "span-2/: JAFFE (...)"
        datasets=[f"{folder}/{line[2:] if line.startswith('./') else line}"
                  for folder, p in plans for line in p.datasets],
        notes=[f"{folder}: {note}" for folder, p in plans for note in p.notes],
        synthetic=any(p.synthetic for _, p in plans))

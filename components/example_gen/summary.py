"""The ingestion summary (ingest_summary.json): what went where, what was left out and why.

Built once per run from the Beam tally; the executor decides pass/fail from it, `deep-emotion
ingest` prints it, and its headline counts become custom properties of the examples artifact.
"""
import collections
from typing import Any, Dict, List, Optional

from components.example_gen.data_root import OS_METADATA_REASON, Plan
from components.example_gen.options import IngestOptions
from contract.data import EMOTIONS, SPLITS


def build(plan: Plan, options: IngestOptions, tally: collections.Counter, rejected_count: int,
          fatal_count: int, first_rejects: List[str], quarantine: Optional[str], spans=()) -> Dict[str, Any]:
    """tally keys: ("example", source, split, emotion id), ("excluded", source, reason), ("rejected", source).
    spans: the span folders read (spans.Span), none for a whole data root."""
    classes: Dict[str, Dict[str, Dict[str, int]]] = {}
    excluded: Dict[str, Dict[str, int]] = {}
    rejected_by_source: Dict[str, int] = {}
    for key, count in sorted(tally.items(), key=lambda item: tuple(map(str, item[0]))):
        if key[0] == "example":
            _, source, split, emotion = key
            per_split = classes.setdefault(source, {s: {e: 0 for e in EMOTIONS} for s in SPLITS})
            per_split[split][EMOTIONS[emotion]] += count
        elif key[0] == "excluded":
            excluded.setdefault(key[1], {})[key[2]] = count
        elif key[0] == "rejected":
            rejected_by_source[key[1]] = count
    by_split = {s: sum(sum(per_split[s].values()) for per_split in classes.values()) for s in SPLITS}
    notes = list(plan.notes) + [f"split '{s}' is empty" for s in SPLITS if not by_split[s]]
    return {
        "data_root": plan.data_root,
        "spans": [{"span": s.number, "folder": s.folder} for s in spans],
        "synthetic": plan.synthetic,
        "options": options.to_dict(),
        "datasets": plan.datasets,
        "examples": {"total": sum(by_split.values()), "by_split": by_split, "by_source_split_class": classes},
        "excluded": excluded,
        "rejected": {"count": rejected_count, "fatal": fatal_count, "by_source": rejected_by_source,
                     "first": first_rejects, "quarantine": quarantine},
        "unrecognised": plan.unrecognised,
        "notes": notes,
        "splits": {s: f"Split-{s}" for s in SPLITS},
    }


def failure_message(summary: Dict[str, Any], options: IngestOptions) -> Optional[str]:
    """Why this run must fail, naming the first bad records; None when it passes."""
    rejected = summary["rejected"]
    budget = options.bad_record_budget
    if rejected["fatal"]:
        headline = (f"{rejected['fatal']} defect(s) that no bad-record budget excuses "
                    f"({rejected['count']} bad record(s) in all)")
        advice = ""
    elif rejected["count"] > budget:
        headline = f"{rejected['count']} bad record(s), over the bad-record budget of {budget}"
        advice = ("Fix them, or let up to N bad records go to a quarantine file with bad_record_budget=N "
                  "(deep-emotion ingest --bad-record-budget N).")
    elif not summary["examples"]["total"]:  # within the budget, but nothing is left to train on
        excluded = sum(sum(r.values()) for r in summary["excluded"].values())
        headline = (f"no examples: {rejected['count']} bad record(s) within the budget of {budget}, "
                    f"{excluded} record(s) left out on purpose, nothing else")
        advice = "A data root needs labelled faces in a layout this project reads (README, \"Your data\")."
    else:
        return None
    left_out = [f"  {count} left out: {reason}" for by_reason in summary["excluded"].values()
                for reason, count in sorted(by_reason.items())] if not summary["examples"]["total"] else []
    details = [f"  {line}" for line in rejected["first"]] + left_out
    lines = [f"Ingesting {summary['data_root']} failed, nothing was written: {headline}" + (":" if details else ".")]
    lines += details
    if rejected["count"] > len(rejected["first"]):
        lines.append(f"  ... and {rejected['count'] - len(rejected['first'])} more")
    if advice:
        lines.append(advice)
    return "\n".join(lines)


def artifact_properties(summary: Dict[str, Any]) -> Dict[str, int]:
    """Headline counts recorded on the examples artifact (MLMD), so a run's data shows in lineage."""
    properties = {"num_examples": summary["examples"]["total"]}
    properties.update({f"num_{s}": n for s, n in summary["examples"]["by_split"].items()})
    properties["num_excluded"] = sum(sum(r.values()) for r in summary["excluded"].values())
    properties["num_rejected"] = summary["rejected"]["count"]
    return properties


def format_table(summary: Dict[str, Any]) -> str:
    """Counts per source, split and class, then what was left out, as plain text."""
    header = ["source", "split"] + list(EMOTIONS) + ["total"]
    rows = []
    for source, per_split in sorted(summary["examples"]["by_source_split_class"].items()):
        for split in SPLITS:
            counts = [per_split[split][e] for e in EMOTIONS]
            rows.append([source, split] + counts + [sum(counts)])
    totals = [sum(r[i] for r in rows) for i in range(2, len(header))]
    rows.append(["all", ""] + totals)
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    spans = summary.get("spans") or []
    lines = ["spans  " + ", ".join(f"{span['folder']}/ (span {span['span']})" for span in spans)] if spans else []
    lines += [f"read  {dataset}" for dataset in summary["datasets"]] + [""]
    lines += ["  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
              for r in [header] + rows]
    for source, reasons in sorted(summary["excluded"].items()):
        for reason, count in sorted(reasons.items()):
            lines.append(f"excluded  {source}: {count} ({reason})")
    rejected = summary["rejected"]
    if rejected["count"]:
        where = f", quarantined in {rejected['quarantine']}" if rejected["quarantine"] else ""
        lines.append(f"rejected  {rejected['count']} bad record(s){where}")
        lines += [f"  {line}" for line in rejected["first"]]
    lines += [f"unrecognised  {entry}" for entry in _grouped_metadata(summary["unrecognised"])]
    for note in summary["notes"]:
        lines.append(f"note  {note}")
    return "\n".join(lines)


def _grouped_metadata(unrecognised: List[str], shown: int = 3) -> List[str]:
    """The unrecognised entries, operating-system metadata in one line when there are more than
    `shown` (a Mac-made zip holds a `._` copy of every file: dozens of lines that say nothing);
    ingest_summary.json keeps every entry."""
    suffix = f" ({OS_METADATA_REASON})"
    metadata = [entry[:-len(suffix)] for entry in unrecognised if entry.endswith(suffix)]
    if len(metadata) <= shown:
        return list(unrecognised)
    others = [entry for entry in unrecognised if not entry.endswith(suffix)]
    return others + [f"{len(metadata)} entries of {OS_METADATA_REASON} (__MACOSX/, ._*, .DS_Store...), "
                     f"e.g. {', '.join(metadata[:shown])}; all listed in ingest_summary.json"]

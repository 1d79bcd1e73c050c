"""A model card (Mitchell et al. 2019) for one trained model, from the artifacts of its run.

Every number comes from an artifact, none is typed in: metrics from the Evaluator's TFMA output
(components/evaluator_output.py, the same reader the report uses), calibration and the training
settings from the Trainer's training record (contract/training_record.py), the data from the
ExampleGen's ingestion summary. Written as model_card.json (for tools) and model_card.md (for
people); the Pusher ships both inside each pushed version.
"""
import json
import math
from typing import Any, Dict, Optional

import jinja2

from components import evaluator_output
from contract import data as dc

CARD_JSON, CARD_MARKDOWN = "model_card.json", "model_card.md"
CARD_FILES = (CARD_JSON, CARD_MARKDOWN)

INTENDED_USE = (
    "Recognising which of seven basic expressions (FER2013's: angry, disgust, fear, happy, sad, "
    "surprise, neutral) a single, roughly frontal face shows in a 48x48 grayscale crop, for research, "
    "teaching, photo organisation and media analytics where a person has agreed to the analysis and "
    "no decision about that person follows from it. The answer is the expression shown, not a feeling "
    "felt: an expression is not a reliable sign of an emotion.")
OUT_OF_SCOPE = [
    "Emotion recognition of people at the workplace or in education institutions: prohibited in the "
    "European Union by the AI Act, Regulation (EU) 2024/1689, Article 5(1)(f), in force since "
    "2 February 2025 (medical and safety reasons excepted).",
    "Decisions about people: hiring, grading, credit, insurance, policing, border control, lie or "
    "intent detection.",
    "Inferring health, mental state, disability, or any protected characteristic.",
    "Faces of children, and anyone who has not agreed to the analysis.",
    "Faces the model was not trained for: strong profiles, occluded or tiny faces, whole photos "
    "without face detection.",
]


def _number(value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def build(evaluation_uri: str, blessed: Optional[bool], training_record: Dict[str, Any],
          ingest_summary: Dict[str, Any], lineage: Dict[str, Any]) -> Dict[str, Any]:
    """The card as a JSON-ready dict. lineage: artifact URIs, fingerprints and the pipeline name."""
    evaluation = evaluator_output.load_evaluation(evaluation_uri)
    metrics = evaluation.metrics.to_dict(orient="index")
    overall = evaluator_output.OVERALL
    per_class = {}
    if overall in evaluation.confusion:
        scores = evaluator_output.top_prediction_scores(evaluation.confusion[overall])
        examples = evaluation.confusion[overall].sum(axis=1)
        per_class = {name: {"precision": _number(scores.loc[name, "precision"]),
                            "recall": _number(scores.loc[name, "recall"]), "examples": int(examples[name])}
                     for name in dc.EMOTIONS}
    calibration = training_record.get("calibration", {})
    serving = training_record.get("serving", {})
    synthetic = bool(ingest_summary.get("synthetic"))
    limitations = [
        "Expressions are posed or acted in most face datasets (CK+, JAFFE, FERG are posed or rendered); "
        "spontaneous expressions are subtler and the accuracy on them is lower.",
        "FER2013's classes are imbalanced (disgust is about 1.5% of it): read the per-class recall, not only "
        "the overall accuracy.",
        "Accuracy can differ across age, gender, skin tone and culture; the training data records none of "
        "these, so the differences are not measured here.",
        "The probabilities are temperature-scaled on the eval split: calibrated for data like it, not for "
        "other cameras or populations.",
    ]
    if synthetic:
        limitations.insert(0, "TRAINED AND EVALUATED ON SYNTHETIC DEMO FACES (deep-emotion demo-data): the "
                              "numbers below say nothing about real faces.")
    return {
        "schema_version": 1,
        "model": {"name": lineage.get("pipeline_name"), "layout": training_record.get("layout"),
                  "trainable_parameters": training_record.get("model", {}).get("trainable_parameters"),
                  "version": None, "serving_dir": None,
                  "inputs": "serving_default: serialized tf.Example with `pixels` (2304 int64, 48x48 grayscale); "
                            "serving_images: PNG/JPEG/GIF/BMP bytes",
                  "outputs": "probabilities [7] (temperature-scaled), class_id, class_name, uncertain",
                  "classes": list(dc.EMOTIONS),
                  "temperature": serving.get("temperature"), "uncertain_below": serving.get("uncertain_below"),
                  "test_time_augmentation": serving.get("tta"), "max_image_pixels": serving.get("max_image_pixels"),
                  "max_image_bytes": serving.get("max_image_bytes")},
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "training_data": {"synthetic": synthetic, "data_root": ingest_summary.get("data_root"),
                          "spans": ingest_summary.get("spans", []),
                          "datasets": ingest_summary.get("datasets", []),
                          "examples_by_split": ingest_summary.get("examples", {}).get("by_split", {}),
                          "by_source_split_class": ingest_summary.get("examples", {}).get("by_source_split_class", {}),
                          "excluded": ingest_summary.get("excluded", {}),
                          "rejected": ingest_summary.get("rejected", {}).get("count", 0),
                          "splits": "FER2013 by Usage; CK+, JAFFE, FERG subject-disjoint (no person in two splits)"},
        "evaluation": {"split": "eval", "evaluation_uri": evaluation_uri, "blessed": blessed,
                       "gate_failures": evaluation.failures,
                       "overall": {"examples": metrics.get(overall, {}).get("examples"),
                                   "accuracy": _number(metrics.get(overall, {}).get("accuracy"))},
                       "by_source": {name: {"examples": row.get("examples"), "accuracy": _number(row.get("accuracy"))}
                                     for name, row in metrics.items() if name != overall},
                       "per_class": per_class,
                       "calibration_error": _number(evaluator_output.calibration_error(evaluation.calibration[overall]))
                       if overall in evaluation.calibration else None},
        "calibration": {"split": "eval", "temperature": calibration.get("temperature"),
                        "ece_before": _number(calibration.get("ece_before")),
                        "ece_after": _number(calibration.get("ece_after")),
                        "abstention": calibration.get("abstention")},
        "training": {"hparams": training_record.get("hparams"), "epochs_run": len(
            training_record.get("history", {}).get("loss", [])), "attempts": training_record.get("training", {}).get(
                "attempts", [])},
        "limitations": limitations,
        "reproduce": {"lineage": lineage,
                      "command": (f"DEEP_EMOTION_DATA_ROOT={ingest_summary.get('data_root')} "
                                  f"DEEP_EMOTION_MODEL_LAYOUT={training_record.get('layout')} "
                                  f"DEEP_EMOTION_HPARAMS='{json.dumps(training_record.get('hparams'), sort_keys=True)}' "
                                  f"DEEP_EMOTION_PIPELINE_NAME={lineage.get('pipeline_name')} "
                                  f"tfx run create --engine beam --pipeline_name {lineage.get('pipeline_name')}"),
                      "how": "The same data root (its input fingerprint is below), the same code (the Trainer code "
                             "fingerprint, pipeline/code_fingerprint.py) and these settings give this model again, "
                             "up to float rounding on a CPU."},
    }


_TEMPLATE = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                               autoescape=False).from_string("""\
# Model card: Deep-Emotion ({{ card.model.layout }}){% if card.model.version %}, version {{ card.model.version }}{% endif %}

{% if card.training_data.synthetic %}
> **Trained and evaluated on synthetic demo faces: these numbers say nothing about real faces.**

{% endif %}
## Model
- Facial-expression classifier with a spatial transformer (Minaee & Abdolrashidi, arXiv 1902.01019), `{{ card.model.layout }}` layout, {{ card.model.trainable_parameters or "?" }} trainable parameters.
- Inputs: {{ card.model.inputs }}.
- Outputs: {{ card.model.outputs }}; classes {{ card.model.classes | join(", ") }}.
- Temperature {{ fmt(card.model.temperature, 3) }}; answers below {{ fmt(card.model.uncertain_below, 3) }} confidence are flagged `uncertain`; test-time augmentation: {{ card.model.test_time_augmentation }}.
{% if card.model.max_image_pixels %}
- `serving_images` refuses, before decoding, an image over {{ "{:,}".format(card.model.max_image_pixels) }} pixels (from its header; a GIF's frames summed) or a request over {{ "{:,}".format(card.model.max_image_bytes) }} bytes.
{% endif %}
{% if card.model.serving_dir %}
- Served from `{{ card.model.serving_dir }}`.
{% endif %}

## Intended use
{{ card.intended_use }}

## Out of scope
{% for use in card.out_of_scope %}
- {{ use }}
{% endfor %}

## Training data
- Data root `{{ card.training_data.data_root }}`: {{ card.training_data.datasets | join("; ") }}.
{% if card.training_data.spans %}
- Spans: {% for s in card.training_data.spans %}{{ s.folder }}/ (span {{ s.span }}){{ ", " if not loop.last }}{% endfor %}.
{% endif %}
- Examples per split: {% for split, n in card.training_data.examples_by_split.items() %}{{ split }} {{ n }}{{ ", " if not loop.last }}{% endfor %}. {{ card.training_data.splits }}.
- Rejected records: {{ card.training_data.rejected }}.

| source | split | {{ card.model.classes | join(" | ") }} |
|---|---|{% for _ in card.model.classes %}---|{% endfor %}

{% for source, splits in card.training_data.by_source_split_class.items() %}
{% for split, counts in splits.items() %}
| {{ source }} | {{ split }} | {% for name in card.model.classes %}{{ counts[name] }} | {% endfor %}

{% endfor %}
{% endfor %}

## Evaluation ({{ card.evaluation.split }} split, TFMA)
- Verdict: {{ "blessed" if card.evaluation.blessed else "not blessed" }}{% for f in card.evaluation.gate_failures %}; {{ f }}{% endfor %}.
- Overall: accuracy {{ fmt(card.evaluation.overall.accuracy) }} on {{ card.evaluation.overall.examples }} faces.

| slice | faces | accuracy |
|---|---|---|
{% for name, row in card.evaluation.by_source.items() %}
| {{ name }} | {{ row.examples }} | {{ fmt(row.accuracy) }} |
{% endfor %}

| class | precision | recall | faces |
|---|---|---|---|
{% for name in card.model.classes if name in card.evaluation.per_class %}
{% set row = card.evaluation.per_class[name] %}
| {{ name }} | {{ fmt(row.precision) }} | {{ fmt(row.recall) }} | {{ row.examples }} |
{% endfor %}

Calibration on {{ card.calibration.split }} (the Trainer): top-label expected calibration error {{ fmt(card.calibration.ece_before) }} before, {{ fmt(card.calibration.ece_after) }} after temperature scaling (T = {{ fmt(card.calibration.temperature, 3) }}). TFMA's calibration plot of the served model's top-label confidence on the same split: calibration error {{ fmt(card.evaluation.calibration_error) }}.
{% if card.calibration.abstention %}
Abstention: the answers kept ({{ pct(card.calibration.abstention.coverage) }} of eval) are {{ pct(card.calibration.abstention.precision) }} right (target {{ pct(card.calibration.abstention.target_precision) }}{{ "" if card.calibration.abstention.reached else ", not reached" }}).
{% endif %}

## Limitations
{% for item in card.limitations %}
- {{ item }}
{% endfor %}

## How to reproduce
{{ card.reproduce.how }}

    {{ card.reproduce.command }}

{% for key, value in card.reproduce.lineage.items() %}
- {{ key }}: `{{ value }}`
{% endfor %}
- layout `{{ card.model.layout }}`, hyperparameters `{{ card.training.hparams | tojson }}`; {{ card.training.epochs_run }} epochs run{% if card.training.attempts | length > 1 %}, after {{ card.training.attempts | length - 1 }} restart(s) from a collapse{% endif %}.
""")


def _fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value):
    return "n/a" if value is None else f"{value:.1%}"


def render_markdown(card: Dict[str, Any]) -> str:
    return _TEMPLATE.render(card=card, fmt=_fmt, pct=_pct)


def files(card: Dict[str, Any]) -> Dict[str, bytes]:
    """{file name: bytes} of the card, as written beside a model."""
    return {CARD_JSON: json.dumps(card, indent=1, sort_keys=True).encode(),
            CARD_MARKDOWN: render_markdown(card).encode()}


def for_version(card: Dict[str, Any], version: str, serving_dir: str) -> Dict[str, bytes]:
    """The card's files for one pushed version (the card names the version it describes)."""
    card = json.loads(json.dumps(card))
    card["model"].update(version=version, serving_dir=serving_dir)
    return files(card)

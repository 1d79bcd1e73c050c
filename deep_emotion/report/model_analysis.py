"""Model-analysis sections: TFMA metrics overall and by source, the confusion matrix, per-class
precision and recall, misclassified eval examples, and the attention view (inputs beside what
the spatial transformer makes of them)."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from contract import data as dc
from deep_emotion.report import examples as examples_lib
from deep_emotion.report import plots
from deep_emotion.report.artifacts import RunArtifacts
from deep_emotion.report.render import Plot, Section, Table, Text

OVERALL = "Overall"
EVAL_SPLIT = "eval"  # the split the pipeline's Evaluator evaluates (pipeline.py: example_splits)
ACCURACY, EXAMPLE_COUNT = "sparse_categorical_accuracy", "example_count"


def slice_name(slice_key) -> str:
    """TFMA's SliceKey as "Overall" or "source=ckplus"."""
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind)
        parts.append(f"{key.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or OVERALL


def _slice_order(name: str):
    source = name.split("=", 1)[-1]
    return (name != OVERALL, dc.SOURCES.index(source) if source in dc.SOURCES else len(dc.SOURCES), name)


@dataclass
class Evaluation:
    metrics: pd.DataFrame           # index slice; examples, accuracy (+ baseline columns when compared)
    precision: pd.DataFrame         # index slice, columns EMOTIONS
    recall: pd.DataFrame            # index slice, columns EMOTIONS
    confusion: Dict[str, pd.DataFrame]  # slice -> true class x predicted class counts
    validation_ok: Optional[bool]
    failures: List[str]


def failure_reason(failure) -> str:
    """Why a TFMA threshold failed, in words (TFMA 0.47 leaves the failure's own message empty)."""
    value = failure.metric_value.double_value.value
    if failure.metric_key.is_diff:
        return f"{failure.metric_key.name} {value:+.4f} against the baseline (must not drop)"
    if failure.metric_threshold.HasField("value_threshold"):
        floor = failure.metric_threshold.value_threshold.lower_bound.value
        return f"{failure.metric_key.name} {value:.4f} is below the floor {floor:.4f}"
    return failure.message or str(failure.metric_key)


def load_evaluation(evaluation_uri: str) -> Evaluation:
    """The Evaluator's output read with TFMA's loaders."""
    import tensorflow_model_analysis as tfma

    metrics, precision, recall = {}, {}, {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        name = slice_name(per_slice.slice_key)
        row = metrics.setdefault(name, {})
        for kv in per_slice.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            key, value = kv.key, kv.value.double_value.value
            baseline = key.model_name == "baseline"
            if key.HasField("sub_key") and key.sub_key.HasField("class_id"):
                if key.is_diff or baseline:
                    continue
                table = {"precision": precision, "recall": recall}.get(key.name)
                if table is not None:
                    table.setdefault(name, {})[dc.EMOTIONS[key.sub_key.class_id.value]] = value
            elif key.name == EXAMPLE_COUNT and not baseline and not key.is_diff:
                row["examples"] = int(value)
            elif key.name == ACCURACY:
                column = "accuracy change" if key.is_diff else "baseline accuracy" if baseline else "accuracy"
                row[column] = value
    confusion = {}
    for per_slice in tfma.load_plots(evaluation_uri):
        for kv in per_slice.plot_keys_and_values:
            if kv.key.model_name == "baseline" or not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            argmax = min(matrices, key=lambda m: abs(m.threshold))  # threshold 0: the top prediction
            counts = np.zeros((dc.NUM_CLASSES, dc.NUM_CLASSES))
            for entry in argmax.entries:
                if 0 <= entry.predicted_class_id < dc.NUM_CLASSES:
                    counts[entry.actual_class_id, entry.predicted_class_id] += entry.num_weighted_examples
            frame = pd.DataFrame(counts.astype(int), index=pd.Index(dc.EMOTIONS, name="true"),
                                 columns=pd.Index(dc.EMOTIONS, name="predicted"))
            confusion[slice_name(per_slice.slice_key)] = frame
    validation = tfma.load_validation_result(evaluation_uri)
    failures = [f"{slice_name(v.slice_key)}: {failure_reason(f)}" for v in validation.metric_validations_per_slice
                for f in v.failures]

    def frame(rows, columns=None):
        ordered = sorted(rows, key=_slice_order)
        return pd.DataFrame([rows[n] for n in ordered], index=pd.Index(ordered, name="slice"), columns=columns)

    metric_columns = [c for c in ("examples", "accuracy", "baseline accuracy", "accuracy change")
                      if any(c in r for r in metrics.values())]
    return Evaluation(frame(metrics, metric_columns), frame(precision, list(dc.EMOTIONS)),
                      frame(recall, list(dc.EMOTIONS)), confusion, validation.validation_ok, failures)


def top_prediction_scores(confusion: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of each class when the top prediction counts (from a confusion matrix)."""
    hits = pd.Series(np.diag(confusion.values), index=confusion.index)
    predicted, actual = confusion.sum(axis=0).values, confusion.sum(axis=1).values
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({"precision": np.where(predicted > 0, hits / predicted, np.nan),
                             "recall": np.where(actual > 0, hits / actual, np.nan)}, index=confusion.index)


def per_class_table(evaluation: Evaluation, slice: str = OVERALL) -> pd.DataFrame:
    """Per class: precision and recall of the top prediction (TFMA's confusion matrix), TFMA's
    binarized Precision and Recall (a class counts as predicted when its probability >= 0.5),
    true examples and top predictions."""
    confusion = evaluation.confusion[slice]
    table = top_prediction_scores(confusion)
    table["precision (p>=0.5)"] = evaluation.precision.loc[slice] if slice in evaluation.precision.index else np.nan
    table["recall (p>=0.5)"] = evaluation.recall.loc[slice] if slice in evaluation.recall.index else np.nan
    table["examples"] = confusion.sum(axis=1)
    table["predicted"] = confusion.sum(axis=0)
    return table.rename_axis("class")  # a renamed copy: the index object is the confusion matrix's


def by_slice(evaluation: Evaluation, score: str) -> pd.DataFrame:
    """One top-prediction score ("precision" or "recall") per slice and class."""
    names = sorted(evaluation.confusion, key=_slice_order)
    return pd.DataFrame([top_prediction_scores(evaluation.confusion[n])[score] for n in names],
                        index=pd.Index(names, name="slice"))


# --- Predictions on the eval split -----------------------------------------------------------------

@dataclass
class Predictions:
    """The serving model's predictions on every eval example."""
    faces: List[examples_lib.Face]
    predicted: np.ndarray       # class ids
    confidence: np.ndarray      # probability of the predicted class

    @property
    def labels(self) -> np.ndarray:
        return np.array([f.emotion for f in self.faces], dtype=np.int64)

    def accuracy(self) -> Optional[float]:
        """Share of top predictions that equal the label; None for no examples (not NaN: a NaN
        compares false with every floor and would pass a check like `accuracy < floor`)."""
        return float(np.mean(self.predicted == self.labels)) if self.faces else None

    def misclassified(self) -> pd.DataFrame:
        wrong = np.flatnonzero(self.predicted != self.labels)
        wrong = wrong[np.argsort(-self.confidence[wrong], kind="stable")]  # the most confident mistakes first
        return pd.DataFrame({
            "image_id": [self.faces[i].image_id for i in wrong],
            "source": [self.faces[i].source for i in wrong],
            "true": [dc.EMOTIONS[self.faces[i].emotion] for i in wrong],
            "predicted": [dc.EMOTIONS[self.predicted[i]] for i in wrong],
            "confidence": self.confidence[wrong]}, index=pd.Index(wrong, name="example"))


def load_serving_model(serving_model_dir: str):
    import tensorflow as tf

    return tf.saved_model.load(serving_model_dir)


def predict(model, examples_uri: str, split: str = EVAL_SPLIT) -> Predictions:
    """Runs serving_default (serialized tf.Examples, as TF Serving clients and TFMA call it)."""
    import tensorflow as tf

    serve = model.signatures["serving_default"]
    faces, predicted, confidence = [], [], []
    for serialized, batch in examples_lib.read_faces(examples_uri, split):
        outputs = serve(examples=tf.constant(serialized))
        probabilities = outputs["probabilities"].numpy()
        predicted.append(outputs["class_id"].numpy())
        confidence.append(probabilities.max(axis=1))
        faces += [examples_lib.Face(batch[dc.PIXELS][i], int(batch[dc.LABEL][i]), batch[dc.SOURCE][i],
                                    batch[dc.IMAGE_ID][i]) for i in range(len(serialized))]
    if not faces:
        return Predictions([], np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Predictions(faces, np.concatenate(predicted), np.concatenate(confidence))


# --- Attention -------------------------------------------------------------------------------------

@dataclass
class AttentionViews:
    inputs: np.ndarray      # [N, 48, 48, 1] what the model receives (Transform's normalised image)
    attended: np.ndarray    # [N, 48, 48, 1] the input warped by the predicted theta
    theta: np.ndarray       # [N, 6] affine parameters (trainer/stn.py conventions)
    emotions: List[int]
    layout: str             # trainer/model.py LAYOUTS


def attention_views(serving_model, model_run_uri: str, serving_model_dir: str, examples_uri: str,
                    per_class: int = 2, split: str = EVAL_SPLIT) -> AttentionViews:
    """A few eval faces of each class through the trained model's spatial transformer
    (trainer/model.attention_model), checked to give serving_default's probabilities."""
    import tensorflow as tf

    from trainer import export
    from trainer import model as deep_emotion_model

    chosen: Dict[int, List[bytes]] = {}
    for serialized, batch in examples_lib.read_faces(examples_uri, split):
        for example, emotion in zip(serialized, batch[dc.LABEL]):
            if len(chosen.setdefault(int(emotion), [])) < per_class:
                chosen[int(emotion)].append(example)
        if all(len(chosen.get(e, [])) >= per_class for e in range(dc.NUM_CLASSES)):
            break
    ordered = [(e, x) for e in sorted(chosen) for x in chosen[e]]
    examples = tf.constant([x for _, x in ordered])
    images = serving_model.signatures["transform_features"](examples=examples)["image"]
    keras_model, layout = export.load_keras_model(serving_model_dir, model_run_uri)
    served = serving_model.signatures["serving_default"](examples=examples)["probabilities"].numpy()
    rebuilt = keras_model(images, training=False).numpy()
    if not np.allclose(served, rebuilt, atol=1e-5):
        raise ValueError(f"{serving_model_dir}: the model rebuilt from trainer/model.py does not reproduce the "
                         f"exported model's probabilities (max difference {np.abs(served - rebuilt).max():.2g}): "
                         f"was it trained with other model code?")
    attended = deep_emotion_model.attention_model(keras_model, view="input")(images, training=False)
    theta = deep_emotion_model.attention_model(keras_model, view="theta")(images, training=False)
    return AttentionViews(images.numpy(), attended.numpy(), theta.numpy(), [e for e, _ in ordered], layout)


# --- Sections --------------------------------------------------------------------------------------

def _missing(section_id: str, title: str, run: RunArtifacts, what: str) -> Section:
    return Section(section_id, title, [Text(f"Not available: this run produced no {what}"
                                            + (f" ({_states_line(run)})." if run.states else "."), "alert")])


def _states_line(run: RunArtifacts) -> str:
    return ", ".join(f"{n} {run.states.get(n, 'did not run')}" for n in ("Trainer", "Evaluator"))


TITLES = {"metrics": "Metrics overall and by source (TFMA)", "confusion-matrix": "Confusion matrix",
          "per-class": "Precision and recall per class", "misclassified": "Misclassified examples",
          "attention": "Attention: what the spatial transformer looks at"}


def evaluation_sections(run: RunArtifacts, evaluation: Optional[Evaluation] = None) -> List[Section]:
    if not run.evaluation:
        return [_missing(i, TITLES[i], run, "evaluation (Evaluator)")
                for i in ("metrics", "confusion-matrix", "per-class")]
    evaluation = evaluation or load_evaluation(run.evaluation)
    verdict = "BLESSED" if evaluation.validation_ok else "NOT BLESSED"
    metrics = Section("metrics", TITLES["metrics"], [
        Text(f"The Evaluator's results on the {EVAL_SPLIT} split ({run.evaluation}). Verdict: {verdict}.",
             "note" if evaluation.validation_ok else "alert"),
        *[Text(f, "alert") for f in evaluation.failures],
        Table("metrics-table", evaluation.metrics)])
    matrix = evaluation.confusion.get(OVERALL)
    if matrix is None:
        missing = [Text("The evaluation has no confusion matrix (MultiClassConfusionMatrixPlot).", "alert")]
        return [metrics, Section("confusion-matrix", TITLES["confusion-matrix"], missing),
                Section("per-class", TITLES["per-class"], missing)]
    confusion_blocks = [
        Table("confusion-matrix-table", matrix, "Rows: true class; columns: top predicted class (TFMA, overall)."),
        Plot.of("confusion-matrix-plot", plots.confusion_matrix(matrix), "Counts; colour: share of the true class.")]
    per_class = per_class_table(evaluation)
    per_class_section = Section("per-class", TITLES["per-class"], [
        Text("Precision and recall count the top prediction (from TFMA's confusion matrix). The pipeline's "
             "per-class Precision and Recall (TFMA, binarized by class id: columns p>=0.5) count a class as "
             "predicted only when its probability reaches 0.5; with seven classes a right top prediction "
             "can stay below that, so they can be lower, and undefined (–) when no probability reaches 0.5."),
        Table("per-class-table", per_class, "Overall."),
        Plot.of("per-class-plot", plots.per_class_bars(per_class), "Top-prediction precision and recall, overall."),
        Table("precision-by-source", by_slice(evaluation, "precision"), "Top-prediction precision by slice."),
        Table("recall-by-source", by_slice(evaluation, "recall"), "Top-prediction recall by slice.")])
    return [metrics, Section("confusion-matrix", TITLES["confusion-matrix"], confusion_blocks), per_class_section]


def prediction_sections(run: RunArtifacts, model=None, show: int = 24) -> List[Section]:
    """Misclassified eval examples and the attention view: both run the trained model."""
    if not run.serving_model or not run.examples:
        return [_missing(i, TITLES[i], run, "trained model (Trainer)") for i in ("misclassified", "attention")]
    model = model or load_serving_model(run.serving_model)
    predictions = predict(model, run.examples)
    wrong = predictions.misclassified()
    total = len(predictions.faces)
    shown = wrong.head(show)
    blocks = [Text(f"{len(wrong)} of {total} {EVAL_SPLIT} examples misclassified by the trained model "
                   f"({run.serving_model}, serving_default); the {len(shown)} most confident mistakes:")]
    if len(shown):
        blocks += [Table("misclassified-table", shown),
                   Plot.of("misclassified-grid", plots.image_grid(
                       [predictions.faces[i].pixels for i in shown.index],
                       [f"{r.true} → {r.predicted}\n{r.confidence:.2f} {r.source}" for r in shown.itertuples()]))]
    misclassified = Section("misclassified", TITLES["misclassified"], blocks)

    if not run.model_run:
        attention = _missing("attention", TITLES["attention"], run, "training record (Trainer's model_run)")
    else:
        views = attention_views(model, run.model_run, run.serving_model, run.examples)
        names = [dc.EMOTIONS[e] for e in views.emotions]
        where = ("the classifier sees exactly this view" if views.layout == "reference" else
                 "the transformer warps the 9x9 feature map; this is the same theta applied to the input image")
        thetas = pd.DataFrame(views.theta, columns=list("abcdef"), index=pd.Index(names, name="true class"))
        attention = Section("attention", TITLES["attention"], [
            Text("Eval faces as the model receives them (Transform's normalisation) beside the same face warped by "
                 f"the affine theta the localisation network predicts for it ({views.layout} layout: {where})."),
            Plot.of("attention-grid", plots.attention_pairs(views.inputs, views.attended, names)),
            Table("attention-theta", thetas, "Predicted theta [[a, b, c], [d, e, f]] (normalised coordinates; "
                                             "identity: a = e = 1, the others 0).")])
    return [misclassified, attention]


def model_sections(run: RunArtifacts) -> List[Section]:
    return [*evaluation_sections(run), *prediction_sections(run)]

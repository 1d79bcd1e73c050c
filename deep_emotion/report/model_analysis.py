"""Model-analysis sections: TFMA metrics overall and by source, the confusion matrix, per-class
precision and recall, misclassified eval examples, and the attention view (inputs beside what
the spatial transformer makes of them)."""
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from components.evaluator_output import (OVERALL, Evaluation, by_slice, load_evaluation,  # noqa: F401
                                         slice_order, top_prediction_scores)
from contract import data as dc
from deep_emotion.report import examples as examples_lib
from deep_emotion.report import plots
from deep_emotion.report.artifacts import RunArtifacts
from deep_emotion.report.render import Markdown, Plot, Section, Table, Text

EVAL_SPLIT = "eval"  # the split the pipeline's Evaluator evaluates (pipeline.py: example_splits)


def per_class_table(evaluation: Evaluation, slice: str = OVERALL) -> pd.DataFrame:
    """Per class: precision and recall of the top prediction (TFMA's confusion matrix), true
    examples and top predictions."""
    confusion = evaluation.confusion[slice]
    table = top_prediction_scores(confusion)
    table["examples"] = confusion.sum(axis=1)
    table["predicted"] = confusion.sum(axis=0)
    return table.rename_axis("class")  # a renamed copy: the index object is the confusion matrix's


# --- Predictions on the eval split -----------------------------------------------------------------

@dataclass
class Predictions:
    """The serving model's predictions on every eval example."""
    faces: List[examples_lib.Face]
    predicted: np.ndarray       # class ids
    confidence: np.ndarray      # probability of the predicted class
    uncertain: Optional[np.ndarray] = None  # the served `uncertain` flag (models exported before it: None)

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
    faces, predicted, confidence, uncertain = [], [], [], []
    for serialized, batch in examples_lib.read_faces(examples_uri, split):
        outputs = serve(examples=tf.constant(serialized))
        probabilities = outputs["probabilities"].numpy()
        predicted.append(outputs["class_id"].numpy())
        confidence.append(probabilities.max(axis=1))
        if "uncertain" in outputs:
            uncertain.append(outputs["uncertain"].numpy())
        faces += [examples_lib.Face(batch[dc.PIXELS][i], int(batch[dc.LABEL][i]), batch[dc.SOURCE][i],
                                    batch[dc.IMAGE_ID][i]) for i in range(len(serialized))]
    if not faces:
        return Predictions([], np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Predictions(faces, np.concatenate(predicted), np.concatenate(confidence),
                       np.concatenate(uncertain) if uncertain else None)


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

    from contract import training_record
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
    serving = training_record.read(model_run_uri).get("serving", {})
    logits = deep_emotion_model.logits_model(keras_model)
    rebuilt = export.served_probabilities(lambda x: logits(x, training=False), images,
                                          serving.get("temperature", 1.0), serving.get("tta", "none")).numpy()
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
          "per-class": "Precision and recall per class", "calibration": "Calibration and abstention",
          "misclassified": "Misclassified examples", "attention": "Attention: what the spatial transformer looks at",
          "model-card": "Model card"}


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
        Text("Precision and recall count the top prediction: from TFMA's confusion matrix, one per slice."),
        Table("per-class-table", per_class, "Overall."),
        Plot.of("per-class-plot", plots.per_class_bars(per_class), "Top-prediction precision and recall, overall."),
        Table("precision-by-source", by_slice(evaluation, "precision"), "Top-prediction precision by slice."),
        Table("recall-by-source", by_slice(evaluation, "recall"), "Top-prediction recall by slice.")])
    return [metrics, Section("confusion-matrix", TITLES["confusion-matrix"], confusion_blocks), per_class_section]


def prediction_sections(run: RunArtifacts, model=None, show: int = 24,
                        predictions: Optional[Predictions] = None) -> List[Section]:
    """Misclassified eval examples and the attention view: both run the trained model."""
    if not run.serving_model or not run.examples:
        return [_missing(i, TITLES[i], run, "trained model (Trainer)") for i in ("misclassified", "attention")]
    model = model or load_serving_model(run.serving_model)
    predictions = predictions or predict(model, run.examples)
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


def calibration_section(run: RunArtifacts, evaluation: Optional[Evaluation] = None,
                        predictions: Optional[Predictions] = None) -> Section:
    """TFMA's reliability diagram of the served probabilities, the Trainer's temperature and ECE
    before/after, and how many eval answers the served model flags uncertain."""
    if not run.evaluation:
        return _missing("calibration", TITLES["calibration"], run, "evaluation (Evaluator)")
    from components.evaluator_output import calibration_error
    from contract import training_record

    evaluation = evaluation or load_evaluation(run.evaluation)
    blocks = []
    record = training_record.read(run.model_run).get("calibration", {}) if run.model_run else {}
    if record.get("temperature") is not None and record.get("ece_before") is not None:
        blocks.append(Text(f"The Trainer fitted a temperature of {record['temperature']:.3f} on the {EVAL_SPLIT} split "
                           f"({record.get('eval_examples', '?')} faces): top-label expected calibration error "
                           f"{record['ece_before']:.4f} before, {record['ece_after']:.4f} after. The served "
                           "probabilities are the temperature-scaled ones."))
    buckets = evaluation.calibration.get(OVERALL)
    if buckets is not None:
        error = calibration_error(buckets)
        blocks += [Plot.of("calibration-plot", plots.reliability(buckets, "Served probabilities (TFMA)"),
                           f"TFMA's calibration plot on {EVAL_SPLIT}: the top-label confidence of the served model "
                           f"against how often that answer is right; calibration error {error:.4f} (the "
                           "Trainer's ECE after scaling, measured again through the served signature)." if error is not None else ""),
                   Table("calibration-table", buckets.set_index(["lower", "upper"]), "Reliability buckets (TFMA).")]
    else:
        blocks.append(Text("The evaluation has no calibration plot (a model evaluated before it was configured).",
                           "alert"))
    abstention = record.get("abstention")
    if abstention:
        blocks.append(Text(
            f"Abstention: answers below {abstention['threshold']:.3f} confidence are flagged uncertain (chosen on "
            f"{EVAL_SPLIT} for {abstention['target_precision']:.0%} precision: the answers kept, "
            f"{abstention['coverage']:.1%} of {EVAL_SPLIT}, are {abstention['precision']:.1%} right"
            + ("" if abstention["reached"] else "; the target was not reached") + ")."))
    if predictions is not None and predictions.uncertain is not None and len(predictions.faces):
        flagged = int(predictions.uncertain.sum())
        kept = ~predictions.uncertain
        right = float(np.mean(predictions.predicted[kept] == predictions.labels[kept])) if kept.any() else float("nan")
        blocks.append(Table("abstention-counts", pd.DataFrame(
            {"faces": [len(predictions.faces)], "flagged uncertain": [flagged],
             "share flagged": [flagged / len(predictions.faces)], "accuracy of the rest": [right]},
            index=pd.Index([EVAL_SPLIT], name="split")), "The served model's `uncertain` flag on eval."))
    return Section("calibration", TITLES["calibration"], blocks)


def model_card_section(run: RunArtifacts) -> Section:
    if not run.model_card:
        return _missing("model-card", TITLES["model-card"], run, "model card (ModelCardGenerator)")
    import tensorflow as tf

    from components.model_card import card as card_lib

    with tf.io.gfile.GFile(f"{run.model_card}/{card_lib.CARD_MARKDOWN}") as f:
        text = f.read()
    return Section("model-card", TITLES["model-card"], [
        Text(f"The card written for this run's model ({run.model_card}); every pushed version carries it as "
             f"{card_lib.CARD_MARKDOWN} and {card_lib.CARD_JSON}.", "note"),
        Markdown("model-card-text", text)])


def model_sections(run: RunArtifacts) -> List[Section]:
    evaluation = load_evaluation(run.evaluation) if run.evaluation else None
    model = load_serving_model(run.serving_model) if run.serving_model else None
    predictions = predict(model, run.examples) if model is not None and run.examples else None
    return [*evaluation_sections(run, evaluation), calibration_section(run, evaluation, predictions),
            *prediction_sections(run, model, predictions=predictions), model_card_section(run)]

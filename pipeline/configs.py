"""Pipeline settings: every one has a documented default and an environment override.

`DEEP_EMOTION_<NAME>` overrides `<NAME>`; values are read when this module is imported, i.e. each
time the tfx CLI compiles or runs the pipeline, so `DEEP_EMOTION_PROFILE=paper tfx run create ...`
works without editing code. `deep-emotion config` prints the values in effect.
Settings only: no pipeline logic here (see pipeline.py).
"""
import json
import os
from pathlib import Path
from typing import Any, Dict

from components.example_gen.options import IngestOptions
from components.example_gen.spans import check_ready_marker
from contract import data

REPO_ROOT = Path(__file__).resolve().parents[1]
_DOCS: Dict[str, str] = {}


def _setting(name: str, default: Any, doc: str) -> Any:
    """Reads DEEP_EMOTION_<name>, converted to the default's type; remembers the doc for `describe`."""
    _DOCS[name] = doc
    raw = os.environ.get(f"DEEP_EMOTION_{name}")
    if raw is None:
        return default
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"DEEP_EMOTION_{name}={raw!r}: expected true or false")
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, (int, float)):
        try:
            return type(default)(raw)
        except ValueError:
            raise ValueError(f"DEEP_EMOTION_{name}={raw!r}: expected a {type(default).__name__}") from None
    if isinstance(default, (dict, list)):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"DEEP_EMOTION_{name}: not valid JSON ({e}): {raw!r}") from None
    return raw


# --- Where things are -----------------------------------------------------------------------------
PIPELINE_NAME = _setting("PIPELINE_NAME", "deep-emotion", "Pipeline name (MLMD context, tfx CLI).")
DATA_ROOT = _setting("DATA_ROOT", str(REPO_ROOT / "out" / "demo-data"),
                     "Data root: FER2013-family CSVs and CK+/JAFFE/FERG folders beneath it.")
OUTPUT_ROOT = _setting("OUTPUT_ROOT", str(REPO_ROOT / "out"),
                       "Everything a run writes goes beneath this unless set separately below.")
PIPELINE_ROOT = _setting("PIPELINE_ROOT", os.path.join(OUTPUT_ROOT, "pipelines", PIPELINE_NAME),
                         "Artifacts of every component run.")
METADATA_PATH = _setting("METADATA_PATH", os.path.join(OUTPUT_ROOT, "metadata", PIPELINE_NAME, "metadata.db"),
                         "ML Metadata SQLite file (local runs).")
SERVING_DIR = _setting("SERVING_DIR", os.path.join(OUTPUT_ROOT, "serving", PIPELINE_NAME),
                       "TF Serving model base directory: Pusher writes <SERVING_DIR>/<version>/.")
SCHEMA_PATH = _setting("SCHEMA_PATH", str(REPO_ROOT / "schema" / "schema.pbtxt"),
                       "Curated schema imported by ImportSchemaGen.")

# --- Data -----------------------------------------------------------------------------------------
SPAN_PATTERN = _setting("SPAN_PATTERN", "span-{SPAN}",
                        "Span folders under the data root (TFX's {SPAN}, or {YYYY}-{MM}-{DD}); a root without them is "
                        "read whole (span 0); empty: never look for spans.")
NUM_SPANS = _setting("NUM_SPANS", 1, "How many of the latest spans a run ingests (TFX's rolling_range num_spans).")
if NUM_SPANS < 1:
    raise ValueError(f"DEEP_EMOTION_NUM_SPANS={NUM_SPANS}: a run ingests 1 or more spans")
SPAN_READY_MARKER = _setting("SPAN_READY_MARKER", "",
                             "A file name (e.g. _SUCCESS) that the job delivering a span writes into its folder last: "
                             "span folders without it are not read yet. Empty: every span folder is complete.")
try:
    check_ready_marker(SPAN_READY_MARKER)
except ValueError as _error:
    raise ValueError(f"DEEP_EMOTION_SPAN_READY_MARKER: {_error}") from None
ACCEPT_DRIFT = _setting("ACCEPT_DRIFT", "",
                        "Span number(s), e.g. 7 or 7,8, whose drift from the served model's training data the DataGate "
                        "accepts (logged); no other span's. Kubeflow: the run parameter accept_drift.")
# Defaults are IngestOptions' own (components/example_gen/options.py): one place for them.
_INGEST_DEFAULTS = IngestOptions()
CONTEMPT_AS = _setting("CONTEMPT_AS", _INGEST_DEFAULTS.contempt_as or "",
                       "FER2013 class to map CK+/FER+ 'contempt' onto (FER2013 has none); empty: excluded, counted.")
USE_FERPLUS_LABELS = _setting("USE_FERPLUS_LABELS", _INGEST_DEFAULTS.use_ferplus_labels,
                              "Relabel FER2013 by FER+ majority vote when fer2013new.csv is present.")
BAD_RECORD_BUDGET = _setting("BAD_RECORD_BUDGET", _INGEST_DEFAULTS.bad_record_budget,
                             "Bad input records tolerated (quarantined with reasons); 0 fails on the first.")
FACE_CROP = _setting("FACE_CROP", ",".join(_INGEST_DEFAULTS.face_crop),
                     "Image layouts whose images go through the face stage (comma-separated: ckplus-original, "
                     "jaffe, ferg); empty: none.")
CKPLUS_PEAK_FRAMES = _setting("CKPLUS_PEAK_FRAMES", _INGEST_DEFAULTS.ckplus_peak_frames,
                              "Original CK+: how many of each labelled sequence's last frames are ingested.")
CKPLUS_FIRST_FRAME_NEUTRAL = _setting("CKPLUS_FIRST_FRAME_NEUTRAL", _INGEST_DEFAULTS.ckplus_first_frame_neutral,
                                      "Original CK+: also ingest each labelled sequence's first frame, as neutral.")

# --- Model and training ---------------------------------------------------------------------------
PROFILES: Dict[str, Dict[str, Any]] = {
    # The paper's published setting (Adam, lr 0.005, batch 32, 500 epochs; early stopping ends it
    # sooner), nothing else. Public re-implementations reach 47-55% on FER2013 (the paper reports
    # 70%): the floor gates out broken models, the no-regression check does the rest.
    "paper": {"hparams": {"learning_rate": 0.005, "batch_size": 32, "epochs": 500,
                          "early_stopping_patience": 20},
              "accuracy_floor": 0.45},
    # The recipe for real data (bench/recipe.py compares it with "paper"): batch 128, linear warm-up
    # over the first epoch then cosine decay, square-root-balanced class weights (rare classes such as
    # disgust count more without full balancing's accuracy cost), the collapse guard and calibration
    # as everywhere.
    "real-data": {"hparams": {"learning_rate": 0.005, "batch_size": 128, "epochs": 60, "lr_schedule": "warmup_cosine",
                              "class_weights": "sqrt_balanced", "early_stopping_patience": 15},
                  "accuracy_floor": 0.45},
    # The real-data recipe in minutes on 2 CPU cores over the synthetic demo data.
    "demo": {"hparams": {"learning_rate": 0.005, "batch_size": 64, "epochs": 40, "lr_schedule": "warmup_cosine",
                         "class_weights": "sqrt_balanced", "early_stopping_patience": 10},
             "accuracy_floor": 0.80},
}
PROFILE = _setting("PROFILE", "real-data", f"Training profile: one of {sorted(PROFILES)}.")
if PROFILE not in PROFILES:
    raise ValueError(f"DEEP_EMOTION_PROFILE={PROFILE!r}: expected one of {sorted(PROFILES)}")
MODEL_LAYOUT = _setting("MODEL_LAYOUT", "paper", "Model layout: 'paper' (47,657 params) or 'reference' (66,877).")
HPARAMS_OVERRIDES = _setting("HPARAMS", {}, 'JSON merged over the profile\'s hyperparameters, e.g. {"epochs": 5}.')
HPARAMS = {**PROFILES[PROFILE]["hparams"], **HPARAMS_OVERRIDES}
WARM_START = _setting("WARM_START", False,
                      "Start training from the weights of the latest blessed model trained on other data (Kubeflow: "
                      "the served one), TFX's base_model; false: a fresh start.")
ACCURACY_FLOOR = _setting("ACCURACY_FLOOR", float(PROFILES[PROFILE]["accuracy_floor"]),
                          "Evaluator blesses a model only at or above this eval accuracy.")

# --- Serving ---------------------------------------------------------------------------------------
MAX_IMAGE_PIXELS = _setting("MAX_IMAGE_PIXELS", data.MAX_IMAGE_PIXELS,
                            "The exported serving_images refuses an image whose header claims more pixels.")
MAX_IMAGE_BYTES = _setting("MAX_IMAGE_BYTES", data.MAX_IMAGE_BYTES,
                           "The exported serving_images refuses an image of more bytes.")

# --- Execution ------------------------------------------------------------------------------------
ENABLE_CACHE = _setting("ENABLE_CACHE", True, "Reuse a component's outputs when its inputs are unchanged.")


def _in_process_beam_args():
    """Beam's DirectRunner in each component's own process, with two flags:

    --pickle_library=cloudpickle: Beam's default, dill, pickles each transform several times slower;
        every Beam component pickles hundreds: ~3.7 s of a run at FER2013's size (docs/design.md).
    --setup_file: this checkout's setup.py, where the pipeline's code comes from. With any Beam flag
        and none of setup_file/extra_packages/sdk_container_image, TFX builds and stages an sdist of
        itself for each Beam component (~7 s, ~49 MB left in /tmp); the in-process runner installs
        nothing, and a remote runner given these flags would install this package.
    Without a checkout (an installed copy), no flag: Beam's defaults, in-process, nothing staged.
    """
    setup_py = REPO_ROOT / "setup.py"
    return ["--pickle_library=cloudpickle", f"--setup_file={setup_py}"] if setup_py.is_file() else []


BEAM_PIPELINE_ARGS = _setting(
    "BEAM_PIPELINE_ARGS", _in_process_beam_args(),
    "JSON list of Beam args for the data components. The default runs in-process with cloudpickle; "
    "other args replace it (keep --setup_file, or TFX stages an sdist of itself per component).")

VERBOSE_LOGS = _setting("VERBOSE_LOGS", False,
                        "Full TFX INFO logs instead of one line per component plus our own messages.")

# Transform and Trainer code: modules of the installed package (locally the checkout, on Kubeflow the
# image). create_pipeline puts a fingerprint of everything they import into the cache key.
TRANSFORM_MODULE = "trainer.preprocessing"
TRAINER_MODULE = "trainer.task"


def describe() -> str:
    """The settings in effect, one per line with its environment variable and meaning."""
    lines = []
    for name, doc in _DOCS.items():
        value = globals()[name if name != "HPARAMS" else "HPARAMS_OVERRIDES"]
        lines.append(f"DEEP_EMOTION_{name}={json.dumps(value) if not isinstance(value, str) else value}\n    {doc}")
    lines.append(f"(effective hyperparameters: {json.dumps(HPARAMS)})")
    return "\n".join(lines)


EXAMPLE_GEN_OPTIONS = {  # components.example_gen.options.IngestOptions
    "contempt_as": CONTEMPT_AS or None,
    "use_ferplus_labels": USE_FERPLUS_LABELS,
    "bad_record_budget": BAD_RECORD_BUDGET,
    "face_crop": FACE_CROP,
    "ckplus_peak_frames": CKPLUS_PEAK_FRAMES,
    "ckplus_first_frame_neutral": CKPLUS_FIRST_FRAME_NEUTRAL,
}


def pipeline_args() -> Dict[str, Any]:
    """pipeline.create_pipeline's arguments from the settings above, for every variant; a variant
    replaces what differs on its orchestrator (Kubeflow: roots, baseline, Beam profile)."""
    return dict(
        pipeline_name=PIPELINE_NAME, pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, schema_path=SCHEMA_PATH,
        serving_dir=SERVING_DIR, transform_module=TRANSFORM_MODULE, trainer_module=TRAINER_MODULE,
        hparams=HPARAMS, model_layout=MODEL_LAYOUT, accuracy_floor=ACCURACY_FLOOR,
        example_gen_options=EXAMPLE_GEN_OPTIONS, span_pattern=SPAN_PATTERN, num_spans=NUM_SPANS,
        span_ready_marker=SPAN_READY_MARKER, accept_drift=ACCEPT_DRIFT,
        warm_start=WARM_START, serving_limits={"max_image_pixels": MAX_IMAGE_PIXELS, "max_image_bytes": MAX_IMAGE_BYTES},
        enable_cache=ENABLE_CACHE, beam_pipeline_args=BEAM_PIPELINE_ARGS)


# === Kubeflow Pipelines (pipeline/kubeflow.py, `deep-emotion kfp`) ==================================
# Read when the Kubeflow pipeline is compiled; paths are as the pods see them, not this machine.
KFP_IMAGE = _setting("KFP_IMAGE", "deep-emotion-tfx:latest",
                     "Image every Kubeflow step runs (built from Dockerfile, pushed where the cluster pulls).")
KFP_PIPELINE_ROOT = _setting("KFP_PIPELINE_ROOT", "",
                             "Kubeflow artifact root for runs and schedules: gs://, s3:// or minio:// URI.")
KFP_DATA_ROOT = _setting("KFP_DATA_ROOT", "",
                         "Data root as the pods read it (gs://...); a run parameter, overridable per run.")
KFP_SERVING_DIR = _setting("KFP_SERVING_DIR", "",
                           "TF Serving base dir the Kubeflow Pusher writes and ServedModel reads (gs://...).")
KFP_SCHEMA_PATH = _setting("KFP_SCHEMA_PATH", "/pipeline/schema/schema.pbtxt",
                           "Curated schema inside the image (the Dockerfile copies the repository to /pipeline).")
KFP_BASELINE = _setting("KFP_BASELINE", "served",
                        "Kubeflow baseline: 'served' (the model in KFP_SERVING_DIR) or 'none' (floor only).")
KFP_TRAINER_GPU_COUNT = _setting("KFP_TRAINER_GPU_COUNT", 1, "GPUs the Trainer step requests; 0 trains on CPU.")
KFP_TRAINER_GPU_TYPE = _setting("KFP_TRAINER_GPU_TYPE", "nvidia.com/gpu",
                                "Accelerator resource name on the cluster nodes (nvidia.com/gpu, amd.com/gpu).")
KFP_TRAINER_CPU = _setting("KFP_TRAINER_CPU", 4.0, "CPU limit of the Trainer step (cores).")
KFP_TRAINER_MEMORY_GB = _setting("KFP_TRAINER_MEMORY_GB", 16.0, "Memory limit of the Trainer step (GB).")
BEAM_PROFILE = _setting("BEAM_PROFILE", "direct",
                        "Where Kubeflow data steps run Beam: direct (in the pod), dataflow, flink or spark.")
BEAM_DIRECT_NUM_WORKERS = _setting("BEAM_DIRECT_NUM_WORKERS", 0,
                                   "direct profile: worker processes per pod; 0 = one per CPU; 1 = in the step's process.")
DATAFLOW_PROJECT = _setting("DATAFLOW_PROJECT", "", "dataflow profile: GCP project.")
DATAFLOW_REGION = _setting("DATAFLOW_REGION", "", "dataflow profile: region, e.g. europe-west1.")
DATAFLOW_TEMP_LOCATION = _setting("DATAFLOW_TEMP_LOCATION", "", "dataflow profile: gs:// staging/temp folder.")
FLINK_JOB_ENDPOINT = _setting("FLINK_JOB_ENDPOINT", "", "flink profile: Beam Flink job server, host:8099.")
SPARK_JOB_ENDPOINT = _setting("SPARK_JOB_ENDPOINT", "", "spark profile: Beam Spark job server, host:8099.")
BEAM_WORKER_POOL = _setting("BEAM_WORKER_POOL", "localhost:50000",
                            "flink/spark: SDK worker pool (KFP_IMAGE run with --worker_pool by each task manager).")
# === end of Kubeflow Pipelines settings ===============================================================

"""The Trainer's record of a training run (`history.json` in its model_run artifact): what the
Trainer writes and what the model card, the report and the attention view read.

    {"layout": "paper", "hparams": {...}, "history": {"loss": [...], ...},
     "calibration": {"temperature", "ece_before", "ece_after", "abstention": {...}, ...},
     "serving": {"temperature", "uncertain_below", "tta"}, "training": {"attempts": [...], ...}}
"""
import json
import os
from typing import Any, Dict

HISTORY_FILE = "history.json"


def write(model_run_dir: str, layout: str, hparams: Dict[str, Any], history: Dict[str, list], **sections: Any) -> str:
    """Writes the record into the model_run directory (any filesystem TensorFlow opens); returns its path."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    path = os.path.join(model_run_dir, HISTORY_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump({"layout": layout, "hparams": hparams,
                   "history": {k: [float(v) for v in vs] for k, vs in history.items()}, **sections}, f, indent=1)
    return path


def read(model_run_dir: str) -> Dict[str, Any]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE)) as f:
        return json.load(f)

"""Process set-up shared by every entry point (CLI, runners, notebooks, tests).

TFT and TFMA in TFX 1.16 are typed against tf_keras (Keras 2), and TensorFlow decides which Keras
`tf.keras` means when it is first imported, so these variables must be set before anything imports
TensorFlow. The Makefile exports them too; setting them here keeps `deep-emotion` right when it is
started some other way.
"""
import logging
import os
import warnings


def quiet_tensorflow() -> None:
    """Select Keras 2 and silence TensorFlow's C++ start-up chatter (call before importing TF)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.WARNING)

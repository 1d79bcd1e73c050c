# The image every Kubeflow step of the pipeline runs, and the Beam SDK worker image of the dataflow,
# flink and spark profiles (same code, same versions on both sides). Build from the repository root:
#
#   docker build -t REGISTRY/deep-emotion-tfx:TAG .                             # with CUDA (GPU Trainer)
#   docker build --build-arg TENSORFLOW_EXTRA= -t REGISTRY/deep-emotion-tfx:TAG-cpu .   # CPU only, ~3 GB less
#   docker push REGISTRY/deep-emotion-tfx:TAG
#
# then compile with DEEP_EMOTION_KFP_IMAGE=REGISTRY/deep-emotion-tfx:TAG (README, "Kubeflow Pipelines").
ARG PYTHON_VERSION=3.10
# Must equal apache-beam in requirements.lock: the boot binary and the SDK talk one protocol version.
ARG BEAM_VERSION=2.59.0

FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS beam

FROM python:${PYTHON_VERSION}-slim
# "and-cuda": TensorFlow's pip extra with the CUDA 12 / cuDNN libraries it was built against (each pinned
# exactly by tensorflow 2.16.2 itself); the node only needs the NVIDIA driver. Empty: CPU-only image.
ARG TENSORFLOW_EXTRA=and-cuda

# Keras 2 (tf_keras) for TFT/TFMA, before any Python starts; quiet TF start-up; plain pip.
ENV TF_USE_LEGACY_KERAS=1 \
    TF_ENABLE_ONEDNN_OPTS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# 1. Dependencies, resolved from setup.py and pinned by the lock (the same command as `make venv`).
#    Only these three files, so a code change does not reinstall TensorFlow.
COPY requirements.lock setup.py README.md ./
RUN pip install "pip==24.2" "setuptools==70.3.0" "wheel==0.44.0" \
 && pip install -c requirements.lock . \
 && if [ -n "${TENSORFLOW_EXTRA}" ]; then pip install -c requirements.lock "tensorflow[${TENSORFLOW_EXTRA}]"; fi \
 && pip uninstall -y deep-emotion-tfx

# 2. The project, editable: code and schema/ stay together under /pipeline (DEEP_EMOTION_KFP_SCHEMA_PATH).
COPY . .
RUN pip install --no-deps -e . && pip check

# Beam's worker boot: Dataflow / Flink / Spark start this image as an SDK worker through it.
COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
# Kubeflow steps do not use the entrypoint: the compiled pipeline sets each container's command to
#   python -m pipeline.kfp_entrypoint   (TFX's kubeflow_v2_run_executor behind an s3:// / minio:// URI shim)
# e.g. docker run --entrypoint python IMAGE -m pipeline.kfp_entrypoint --executor_class_path ... to debug one.

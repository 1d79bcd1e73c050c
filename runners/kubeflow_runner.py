"""Compiles the pipeline for Kubeflow Pipelines 2.x (pipeline/kubeflow.py) into a PipelineSpec YAML.

    python runners/kubeflow_runner.py [OUT.yaml]      (the same as `deep-emotion kfp compile -o OUT.yaml`)

Settings: the Kubeflow block of pipeline/configs.py, DEEP_EMOTION_KFP_* variables.
"""
import sys

from pipeline import configs, kubeflow

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else f"{configs.PIPELINE_NAME}-kfp.yaml"
    kubeflow.compile_pipeline(out)
    print(f"Wrote {out}")

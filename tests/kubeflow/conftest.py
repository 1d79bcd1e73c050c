"""One Kubeflow compile per test session, with settings no default would produce, so every
assertion about the YAML traces back to a setting."""
import pytest

from pipeline import configs

KFP_SETTINGS = {
    "KFP_IMAGE": "registry.example.com/ml/deep-emotion-tfx:test-7",
    "KFP_DATA_ROOT": "gs://example-bucket/deep-emotion/data",
    "KFP_SERVING_DIR": "gs://example-bucket/deep-emotion/serving",
    "KFP_TRAINER_GPU_COUNT": 2,
    "KFP_TRAINER_GPU_TYPE": "nvidia.com/gpu",
    "KFP_TRAINER_CPU": 6.0,
    "KFP_TRAINER_MEMORY_GB": 20.0,
    "BEAM_PROFILE": "direct",
    "BEAM_DIRECT_NUM_WORKERS": 3,
}


@pytest.fixture(scope="session")
def kfp_settings():
    return dict(KFP_SETTINGS)


@pytest.fixture(scope="session")
def compiled_package(tmp_path_factory):
    """(path of the compiled PipelineSpec YAML, the spec as the compiler returned it)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in KFP_SETTINGS.items():
            patch.setattr(configs, name, value)
        from pipeline import kubeflow

        path = str(tmp_path_factory.mktemp("kfp") / "deep-emotion-kfp.yaml")
        spec = kubeflow.compile_pipeline(path)
    return path, spec

"""`deep-emotion kfp submit|schedule` against FakeKfpServer, which stands in for a KFP 2.x cluster
(none can run here): the assertions are on what the cluster would have been asked to do."""
import socket
import time

import pytest
import yaml
from click.testing import CliRunner
from kfp.client import client as kfp_client

from deep_emotion.cli.kfp import command as kfp
from tests.kubeflow.fake_kfp_server import FakeKfpServer

ROOT = "gs://example-bucket/kfp-root"
DATA = "gs://example-bucket/data-2024-06"
CRON = "0 0 3 * * *"


@pytest.fixture(autouse=True)
def no_local_kfp_context(tmp_path, monkeypatch):
    """kfp.Client reads ~/.config/kfp/context.json (namespace, cookies); keep the user's out of tests."""
    monkeypatch.setattr(kfp_client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for name in ("DEEP_EMOTION_KFP_HOST", "KF_PIPELINES_ENDPOINT", "DEEP_EMOTION_KFP_TOKEN",
                 "DEEP_EMOTION_KFP_COOKIE", "DEEP_EMOTION_KFP_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


def _kfp(*args, **env):
    return CliRunner().invoke(kfp, list(args), env=env or None, catch_exceptions=False)


def _submit(server, package, *extra, token="t0ken"):
    return _kfp("submit", "--host", server.url, "--token", token, "--package", package,
                "--pipeline-root", ROOT, "--param", f"data_root={DATA}", *extra)


def _schedule(server, package, *extra):
    return _kfp("schedule", "--host", server.url, "--package", package, "--pipeline-root", ROOT,
                "--param", f"data_root={DATA}", "--cron", CRON, *extra, DEEP_EMOTION_KFP_TOKEN="t0ken")


def test_submit_uploads_then_versions_and_runs_with_root_and_parameters(compiled_package):
    package = compiled_package[0]
    with FakeKfpServer(token="t0ken") as server:
        first, second = _submit(server, package), _submit(server, package)
        assert first.exit_code == 0, first.output
        assert second.exit_code == 0, second.output
        state = server.state
        assert [p["display_name"] for p in state.pipelines] == ["deep-emotion"]
        assert len(server.calls("POST", "/pipelines/upload")) == 1  # then a new version, not a new pipeline
        assert len(server.calls("POST", "/pipelines/upload_version")) == 1
        assert len(state.versions) == 2 and len(state.experiments) == 1
        # The uploaded package is the compiled one, with every task.
        assert set(state.versions[0]["pipeline_spec"]["root"]["dag"]["tasks"]) == \
            set(compiled_package[1]["root"]["dag"]["tasks"])
        for run, version in zip(state.runs, state.versions):
            assert run["pipeline_version_reference"] == {"pipeline_id": version["pipeline_id"],
                                                         "pipeline_version_id": version["pipeline_version_id"]}
            assert run["runtime_config"] == {"pipeline_root": ROOT, "parameters": {"data_root": DATA}}
            assert run["experiment_id"] == state.experiments[0]["experiment_id"]
        assert {r.headers.get("authorization") for r in server.requests} == {"Bearer t0ken"}
        assert state.runs[1]["run_id"] in second.output and ROOT in second.output


def test_schedule_creates_one_at_a_time_no_catchup_recurring_run(compiled_package):
    with FakeKfpServer(token="t0ken") as server:
        result = _schedule(server, compiled_package[0])
        assert result.exit_code == 0, result.output
        [recurring] = server.state.recurring_runs
        assert recurring["trigger"] == {"cron_schedule": {"cron": CRON}}
        assert recurring["max_concurrency"] == 1 and recurring["no_catchup"] is True
        assert recurring["mode"] == "ENABLE"
        assert recurring["runtime_config"] == {"pipeline_root": ROOT, "parameters": {"data_root": DATA}}
        version = server.state.versions[-1]
        assert recurring["pipeline_version_reference"]["pipeline_version_id"] == version["pipeline_version_id"]
        assert "one run at a time, no catch-up" in result.output


def test_a_second_schedule_of_the_same_name_is_refused_unless_replacing(compiled_package):
    with FakeKfpServer(token="t0ken") as server:
        assert _schedule(server, compiled_package[0]).exit_code == 0
        first_id = server.state.recurring_runs[0]["recurring_run_id"]
        refused = _schedule(server, compiled_package[0])
        assert refused.exit_code != 0 and "already has a recurring run" in refused.output
        assert len(server.state.recurring_runs) == 1
        replaced = _schedule(server, compiled_package[0], "--replace")
        assert replaced.exit_code == 0, replaced.output
        assert [r["recurring_run_id"] for r in server.state.recurring_runs] != [first_id]
        assert len(server.state.recurring_runs) == 1


@pytest.mark.parametrize("cron, message", [
    ("0 3 * * *", "did you mean '0 0 3 * * *'?"),
    ("every day", "is not a 6-field cron expression"),
    ("0 0 3 * * * 2024", "is not a 6-field cron expression"),
])
def test_cron_must_have_kfp_six_fields(compiled_package, cron, message):
    result = _kfp("schedule", "--host", "http://127.0.0.1:9", "--package", compiled_package[0],
                  "--pipeline-root", ROOT, "--cron", cron)
    assert result.exit_code == 2 and message in result.output


def test_schedule_help_explains_the_six_field_cron():
    result = _kfp("schedule", "--help")
    assert "6 fields, seconds first" in result.output and "'0 0 3 * * *'" in result.output


def test_unreachable_host_fails_fast_with_what_to_check(compiled_package):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = _kfp("submit", "--host", f"http://127.0.0.1:{port}", "--package", compiled_package[0],
                  "--pipeline-root", ROOT)
    assert result.exit_code == 1
    assert f"Cannot reach the Kubeflow Pipelines API at http://127.0.0.1:{port}" in result.output
    assert "--host" in result.output and time.monotonic() - started < 15


def test_rejected_credentials_are_reported_as_an_authentication_failure(compiled_package):
    with FakeKfpServer(token="right") as server:
        result = _submit(server, compiled_package[0], token="wrong")
        assert result.exit_code == 1
        assert "refused the request (HTTP 401" in result.output and "--token" in result.output
        assert server.state.runs == [] and server.state.pipelines == []


def test_login_proxy_redirect_is_reported_as_an_authentication_failure(compiled_package):
    with FakeKfpServer(login_redirect=True) as server:
        result = _submit(server, compiled_package[0])
        assert result.exit_code == 1
        assert "redirect to /dex/auth" in result.output and "--cookie" in result.output


def test_parameters_are_checked_against_the_compiled_pipeline(compiled_package, tmp_path):
    # A package compiled without DEEP_EMOTION_KFP_DATA_ROOT: data_root has no default.
    spec = yaml.safe_load(open(compiled_package[0], encoding="utf-8"))
    del spec["root"]["inputDefinitions"]["parameters"]["data_root"]["defaultValue"]
    no_default = tmp_path / "no-default.yaml"
    no_default.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with FakeKfpServer(token="t0ken") as server:
        unknown = _submit(server, compiled_package[0], "--param", "epochs=3")
        assert unknown.exit_code == 2 and "'epochs' is not a parameter" in unknown.output
        missing = _kfp("submit", "--host", server.url, "--token", "t0ken", "--package", str(no_default),
                       "--pipeline-root", ROOT)
        assert missing.exit_code == 2 and "has no default for data_root: pass --param data_root=..." in missing.output
        assert server.state.runs == []


@pytest.mark.parametrize("root, message", [
    ("", "No pipeline root"),
    ("/mnt/artifacts", "expected a URI starting with one of gs://, s3://, minio://"),
])
def test_pipeline_root_is_required_and_must_be_an_object_store_uri(compiled_package, root, message):
    result = _kfp("submit", "--host", "http://127.0.0.1:9", "--package", compiled_package[0], "--pipeline-root", root)
    assert result.exit_code == 2 and message in result.output

"""`deep-emotion kfp compile|run-local|submit|schedule`: the Kubeflow Pipelines 2.x workflow from a workstation.

    deep-emotion kfp compile   --output deep-emotion-kfp.yaml
    deep-emotion kfp run-local --package deep-emotion-kfp.yaml --pipeline-root /tmp/kfp-dry-run \\
                               --param data_root=/data/faces          (the dry run: pipeline/kfp_local.py)
    deep-emotion kfp submit    --host https://kfp.example.com --pipeline-root gs://bucket/kfp \\
                               --param data_root=gs://bucket/data
    deep-emotion kfp schedule  --cron "0 0 3 * * *" (+ the same flags)

submit and schedule upload the compiled pipeline (a new version when it already exists), so runs
and schedules always point at a stored, inspectable version. The connection comes from flags or
DEEP_EMOTION_KFP_HOST / _NAMESPACE / _TOKEN / _COOKIE; nothing secret is written to disk.
"""
import contextlib
import datetime
import json
import os
import re
import tempfile
import warnings
from typing import Dict, Iterator, Optional, Tuple

import click

from pipeline import configs

PIPELINE_ROOT_SCHEMES = ("gs://", "s3://", "minio://")
CRON_HELP = ("Kubeflow cron: 6 fields, seconds first: SECOND MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK. "
             "'0 0 3 * * *' runs daily at 03:00:00, '0 30 2 * * 1' Mondays at 02:30:00 (the cluster's time "
             "zone, usually UTC). A 5-field crontab line 'M H DOM MON DOW' is '0 M H DOM MON DOW' here.")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/\-#LW]+$")


def validate_cron(expression: str) -> str:
    """The expression if it has KFP's 6 fields; a 5-field crontab line gets the 6-field suggestion."""
    fields = expression.split()
    if len(fields) == 5:
        raise click.BadParameter(
            f"'{expression}' has 5 fields (crontab style). Kubeflow Pipelines expects 6, seconds first: "
            f"did you mean '0 {expression}'?", param_hint="--cron")
    if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields):
        raise click.BadParameter(f"'{expression}' is not a 6-field cron expression. {CRON_HELP}", param_hint="--cron")
    return " ".join(fields)


def validate_pipeline_root(root: str) -> str:
    if not root:
        raise click.UsageError("No pipeline root: pass --pipeline-root or set DEEP_EMOTION_KFP_PIPELINE_ROOT "
                               "(gs://bucket/path, s3://bucket/path or minio://mlpipeline/path).")
    if not root.startswith(PIPELINE_ROOT_SCHEMES):
        raise click.BadParameter(f"'{root}': expected a URI starting with one of {', '.join(PIPELINE_ROOT_SCHEMES)}",
                                 param_hint="--pipeline-root")
    return root.rstrip("/")


def load_package(package: str):
    """The package's PipelineSpec proto: its first YAML document (a second one, when present, is the
    platform spec), parsed strictly, so a field KFP would not know fails here, not on the cluster."""
    import yaml  # pylint: disable=import-outside-toplevel
    from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
    from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=import-outside-toplevel

    with open(package, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    if not documents:
        raise click.ClickException(f"{package}: empty, not a compiled pipeline")
    try:
        return json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as error:
        raise click.ClickException(f"{package}: not a KFP PipelineSpec ({error})") from None


def parse_params(pairs: Tuple[str, ...], package: str) -> Dict[str, str]:
    """--param KEY=VALUE pairs checked against the compiled pipeline's parameters."""
    declared = load_package(package).root.input_definitions.parameters
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}': expected KEY=VALUE", param_hint="--param")
        if key not in declared:
            raise click.BadParameter(f"'{key}' is not a parameter of {package} (it has: {', '.join(sorted(declared))})",
                                     param_hint="--param")
        params[key] = value
    missing = [name for name, spec in declared.items() if name not in params and not spec.HasField("default_value")]
    if missing:
        raise click.UsageError(f"{package} has no default for {', '.join(missing)}: pass "
                               + " ".join(f"--param {m}=..." for m in missing))
    return params


def _auth_hint(host: str, detail: str) -> str:
    return (f"Kubeflow Pipelines at {host} refused the request ({detail}): authentication failed. Pass a bearer "
            f"token (--token / DEEP_EMOTION_KFP_TOKEN, e.g. `gcloud auth print-access-token` or a service-account "
            f"token) or the session cookie of a Dex/oauth2-proxy login (--cookie / DEEP_EMOTION_KFP_COOKIE, "
            f"e.g. 'authservice_session=...'), and check the namespace.")


def _unreachable_hint(host: str, reason: object) -> str:
    return (f"Cannot reach the Kubeflow Pipelines API at {host}: {reason}. Check --host / DEEP_EMOTION_KFP_HOST "
            f"(e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`).")


def check_api(host: str, token: Optional[str], cookie: Optional[str], timeout: float = 10.0) -> None:
    """One quick healthz call, so an unreachable host or a login wall fails in seconds, and clearly."""
    import requests  # pylint: disable=import-outside-toplevel

    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    url = f"{host}/apis/v2beta1/healthz"
    try:
        response = requests.get(url, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise click.ClickException(_unreachable_hint(host, f"no answer within {timeout:.0f} s")) from None
    except requests.RequestException as e:
        cause = re.search(r"\[Errno[^\]]*\][^'\")]*|Temporary failure in name resolution", str(e))
        raise click.ClickException(_unreachable_hint(host, cause.group(0) if cause else str(e))) from None
    if response.status_code in (401, 403):
        raise click.ClickException(_auth_hint(host, f"HTTP {response.status_code} on {url}"))
    if 300 <= response.status_code < 400:
        raise click.ClickException(_auth_hint(
            host, f"HTTP {response.status_code} redirect to {response.headers.get('Location', '?')}, a login page"))
    if response.status_code == 404:
        raise click.ClickException(f"No Kubeflow Pipelines 2.x API at {url} (HTTP 404): is --host the KFP endpoint "
                                   "(the UI/API address, not the dashboard of another service), and KFP 2.x?")
    if response.status_code != 200:
        raise click.ClickException(f"{url} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        response.json()
    except ValueError:
        raise click.ClickException(_auth_hint(host, f"{url} answered with a web page, not the API")) from None


@contextlib.contextmanager
def api_errors(host: str) -> Iterator[None]:
    """Turns the KFP client's exceptions into one-line messages that say what to fix."""
    import kfp_server_api  # pylint: disable=import-outside-toplevel
    import urllib3  # pylint: disable=import-outside-toplevel

    try:
        yield
    except kfp_server_api.ApiException as e:
        if e.status in (401, 403):
            raise click.ClickException(_auth_hint(host, f"HTTP {e.status} {e.reason}")) from None
        body = (e.body or b"").decode() if isinstance(e.body, bytes) else str(e.body or "")
        raise click.ClickException(f"Kubeflow Pipelines at {host} answered HTTP {e.status} {e.reason}: "
                                   f"{body[:500]}") from None
    except urllib3.exceptions.HTTPError as e:
        raise click.ClickException(_unreachable_hint(host, e)) from None


class Connection:
    """A kfp.Client for one host, namespace and credential, with the few calls this CLI makes."""

    def __init__(self, host: str, namespace: Optional[str], token: Optional[str], cookie: Optional[str]):
        import kfp  # pylint: disable=import-outside-toplevel

        self.host = host.rstrip("/")
        if not self.host.startswith(("http://", "https://")):
            raise click.BadParameter(f"'{host}': expected http://... or https://...", param_hint="--host")
        self.namespace = namespace or None
        check_api(self.host, token, cookie)
        with api_errors(self.host), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2+"
            self.client = kfp.Client(host=self.host, namespace=self.namespace or "kubeflow",
                                     existing_token=token or None, cookies=cookie or None)

    def upload(self, package: str) -> Tuple[str, str, str]:
        """Uploads the package as a new pipeline or a new version of it; (pipeline name, id, version id)."""
        name = load_package(package).pipeline_info.name
        with api_errors(self.host):
            found = self.client.list_pipelines(filter=_name_filter(name), namespace=self.namespace).pipelines or []
            if not found:
                pipeline_id = self.client.upload_pipeline(
                    package, pipeline_name=name, namespace=self.namespace).pipeline_id
                versions = self.client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
                return name, pipeline_id, versions.pipeline_versions[0].pipeline_version_id
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
            version = self.client.upload_pipeline_version(
                package, pipeline_version_name=f"{name}-{stamp}", pipeline_id=found[0].pipeline_id)
            return name, version.pipeline_id, version.pipeline_version_id

    def experiment_id(self, experiment: str) -> str:
        with api_errors(self.host):
            return self.client.create_experiment(name=experiment, namespace=self.namespace).experiment_id


def _name_filter(name: str) -> str:
    """display_name == name, in the form kfp.Client itself sends (operation 1 is EQUALS)."""
    return json.dumps({"predicates": [{"operation": 1, "key": "display_name", "stringValue": name}]})


@contextlib.contextmanager
def pipeline_package(package: Optional[str]) -> Iterator[str]:
    """The given compiled YAML, or one compiled now from the current settings into a temporary file."""
    if package:
        yield package
        return
    from pipeline import kubeflow  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{configs.PIPELINE_NAME}.yaml")
        _compile(kubeflow, path, image=None)
        yield path


def _compile(kubeflow, output: str, image: Optional[str]) -> None:
    try:
        kubeflow.compile_pipeline(output, image=image)
    except ValueError as e:  # a setting the Kubeflow variant needs is missing or wrong
        raise click.ClickException(str(e)) from None


def _connection_options(command):
    options = [
        click.option("--host", envvar=["DEEP_EMOTION_KFP_HOST", "KF_PIPELINES_ENDPOINT"], required=True,
                     help="KFP API/UI address, e.g. https://kubeflow.example.com/pipeline or http://localhost:8080 "
                          "[env DEEP_EMOTION_KFP_HOST or KF_PIPELINES_ENDPOINT]."),
        click.option("--namespace", envvar="DEEP_EMOTION_KFP_NAMESPACE", default=None,
                     help="Profile namespace of a multi-user Kubeflow; omit for standalone KFP "
                          "[env DEEP_EMOTION_KFP_NAMESPACE]."),
        click.option("--token", envvar="DEEP_EMOTION_KFP_TOKEN", default=None,
                     help="Bearer token [env DEEP_EMOTION_KFP_TOKEN]."),
        click.option("--cookie", envvar="DEEP_EMOTION_KFP_COOKIE", default=None,
                     help="Session cookie of a login proxy, 'name=value' [env DEEP_EMOTION_KFP_COOKIE]."),
        click.option("--package", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="A compiled pipeline YAML; default: compile the current settings now."),
        click.option("--pipeline-root", default=configs.KFP_PIPELINE_ROOT, show_default=bool(configs.KFP_PIPELINE_ROOT),
                     help="Artifact root of the runs: gs://, s3:// or minio:// [env DEEP_EMOTION_KFP_PIPELINE_ROOT]."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="Pipeline parameter, e.g. data_root=gs://bucket/data (repeatable)."),
        click.option("--experiment", default=configs.PIPELINE_NAME, show_default=True, help="KFP experiment."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("kfp")
def command():
    """Compile, dry-run (run-local), submit and schedule the pipeline on Kubeflow Pipelines 2.x."""


@command.command("run-local")
@click.option("--package", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The compiled pipeline YAML (deep-emotion kfp compile), with local paths.")
@click.option("--pipeline-root", required=True, type=click.Path(file_okay=False),
              help="Local folder for the runs' artifacts and the stand-in's metadata and cache: reuse it to "
                   "see what a schedule's next run reuses.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Pipeline parameter, e.g. data_root=/data/faces (repeatable).")
@click.option("--run-id", default=None, help="Run id (folder under the pipeline root) [default: time-based].")
@click.option("--allow-remote-uris", is_flag=True,
              help="Run a package that names gs://, s3:// or minio:// paths (a dry run would then touch them).")
def run_local(package, pipeline_root, params, run_id, allow_remote_uris):
    """Run the compiled pipeline here, every task in DAG order through the image's entry point, as KFP 2.x runs it."""
    from pipeline import kfp_local  # pylint: disable=import-outside-toplevel

    arguments = parse_params(params, package)
    try:
        report = kfp_local.run(package, pipeline_root, arguments, run_id=run_id, allow_remote=allow_remote_uris,
                               echo=click.echo)
    except kfp_local.RunLocalError as error:
        raise click.ClickException(str(error)) from None
    cached = [t.name for t in report.tasks if t.state == "CACHED"]
    ran = [t.name for t in report.tasks if t.state == "COMPLETE"]
    click.echo(f"Run {report.run_id}: {len(ran)} task(s) ran, {len(cached)} from the cache, in {report.seconds:.0f} s; "
               f"peak RSS {max((t.peak_rss_mb for t in report.tasks), default=0):.0f} MB; report "
               f"{os.path.join(report.run_dir, 'run-local.json')}")
    work = [t for t in report.tasks if t.name in ("Trainer", "Pusher")]
    if cached and work and all(t.state == "CACHED" for t in work):
        which = f"every task but {', '.join(ran)}" if ran else "every task"
        click.echo(f"Nothing new: {which} came from the cache; nothing was trained or pushed.")


@command.command("compile")
@click.option("--output", "-o", default=f"{configs.PIPELINE_NAME}-kfp.yaml", show_default=True,
              help="PipelineSpec YAML to write.")
@click.option("--image", default=None, help=f"Image for every step [default: {configs.KFP_IMAGE}].")
def compile_command(output, image):
    """Write the PipelineSpec YAML (settings: the Kubeflow block of `deep-emotion config`)."""
    from pipeline import kubeflow  # pylint: disable=import-outside-toplevel

    _compile(kubeflow, output, image)
    click.echo(f"Wrote {output} (image {image or configs.KFP_IMAGE}).")


def _upload(host, namespace, token, cookie, package, pipeline_root, params, experiment):
    """What submit and schedule share: check the root and parameters, connect, upload the pipeline
    (or a new version of it), find or create the experiment."""
    pipeline_root = validate_pipeline_root(pipeline_root)
    connection = Connection(host, namespace, token, cookie)
    with pipeline_package(package) as path:
        arguments = parse_params(params, path)
        uploaded = connection.upload(path)
    return connection, pipeline_root, arguments, uploaded, connection.experiment_id(experiment)


@command.command("submit")
@_connection_options
@click.option("--run-name", default=None, help="Run name [default: '<pipeline> <UTC time>'].")
def submit(host, namespace, token, cookie, package, pipeline_root, params, experiment, run_name):
    """Upload the pipeline (or a new version of it) and start one run."""
    connection, pipeline_root, arguments, (name, pipeline_id, version_id), experiment_id = _upload(
        host, namespace, token, cookie, package, pipeline_root, params, experiment)
    run_name = run_name or f"{name} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    with api_errors(connection.host):
        run = connection.client.run_pipeline(experiment_id, run_name, params=arguments, pipeline_id=pipeline_id,
                                             version_id=version_id, pipeline_root=pipeline_root)
    click.echo(f"Started run '{run_name}' ({run.run_id}) of {name} version {version_id}, "
               f"pipeline root {pipeline_root}: {connection.host}/#/runs/details/{run.run_id}")


@command.command("schedule", epilog=CRON_HELP)
@_connection_options
@click.option("--cron", required=True, callback=lambda ctx, param, value: validate_cron(value),
              help="When to run, 6 fields with seconds first, e.g. '0 0 3 * * *' (daily 03:00). See below.")
@click.option("--name", "schedule_name", default=None, help="Recurring run name [default: '<pipeline> <cron>'].")
@click.option("--replace", is_flag=True,
              help="Delete this experiment's recurring runs of the same name once the new one exists.")
def schedule(host, namespace, token, cookie, package, pipeline_root, params, experiment, cron, schedule_name,
             replace):
    """Upload the pipeline (or a new version) and create a recurring run: one at a time, no catch-up."""
    connection, pipeline_root, arguments, (name, pipeline_id, version_id), experiment_id = _upload(
        host, namespace, token, cookie, package, pipeline_root, params, experiment)
    schedule_name = schedule_name or f"{name} {cron}"
    with api_errors(connection.host):
        existing = connection.client.list_recurring_runs(
            experiment_id=experiment_id, filter=_name_filter(schedule_name)).recurring_runs or []
        if existing and not replace:
            raise click.ClickException(
                f"Experiment '{experiment}' already has a recurring run named '{schedule_name}' "
                f"({', '.join(r.recurring_run_id for r in existing)}): two would both fire. Pass --replace, "
                f"or --name for a second schedule.")
        # max_concurrency=1: a run still training when the next is due makes that one wait, never two
        # Trainers at once; no_catchup: after a pause, one run, not one per missed slot.
        recurring = connection.client.create_recurring_run(
            experiment_id, schedule_name, cron_expression=cron, max_concurrency=1, no_catchup=True,
            params=arguments, pipeline_id=pipeline_id, version_id=version_id, pipeline_root=pipeline_root,
            enabled=True)
        for old in existing:
            connection.client.delete_recurring_run(old.recurring_run_id)
    replaced = f", replacing {len(existing)}" if existing else ""
    click.echo(f"Scheduled '{schedule_name}' ({recurring.recurring_run_id}{replaced}): {name} version {version_id} "
               f"at cron '{cron}', one run at a time, no catch-up, pipeline root {pipeline_root}: "
               f"{connection.host}/#/recurringrun/details/{recurring.recurring_run_id}")

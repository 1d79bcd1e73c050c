"""`deep-emotion kfp run-local`: the compiled Kubeflow pipeline (PipelineSpec YAML) run on this
machine, task by task, the way Kubeflow Pipelines 2.x runs it on a cluster, to dry-run the exact
package before an image ships.

A stand-in for KFP's driver and launcher (backend/src/v2 at 2.5.0) and their ML Metadata, no more:
- tasks in DAG order (dependentTasks, and the producers a task reads from), one at a time;
- a task's inputs as the driver resolves them: constants; run parameters, else the package's defaults;
  upstream output parameters, as text where the input is typed STRING (KFP converts them so); upstream
  output artifacts as the driver reads them back from ML Metadata: the artifact id as the name, the
  metadata with numbers as doubles, and an empty type (it keeps no schema, tensorflow/tfx#7768);
- outputs as the driver provisions them: <pipeline root>/<pipeline>/<run id>/<task>/<uuid>/<key>, the
  output parameter files and the output metadata file (<task>/kfp_outputs/output_metadata.json);
- the ExecutorInput, built with kfp's own proto, put for {{$}} into the command and arguments the
  YAML holds, with the component's parameter defaults as the launcher adds them; the command runs here,
  `python` being this interpreter and the repository on PYTHONPATH, as the image has them;
- the ExecutorOutput read back strictly: uri and metadata merged into the output artifacts, output
  parameters collected, both handed to the tasks after it;
- KFP's cache: a task with enableCache whose key (input artifact ids, parameter values, output specs,
  image, unsubstituted command and arguments) an earlier successful task of this pipeline had reuses
  that task's outputs. Artifacts and cache live in <pipeline root>/run-local/metadata.json, so
  successive runs on one root behave as successive runs on one cluster.
Not modelled: pods, Argo, retries, parallel tasks, trigger conditions, loops, exit handlers, importer
and resolver executors (refused), object-store copies: the pipeline root is a local folder, which TFX
reads and writes directly, as it does gs://. Packages naming gs://, s3:// or minio:// paths are
refused unless allowed, so that a dry run cannot push to production.
"""
import copy
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

REPO_ROOT = Path(__file__).resolve().parents[1]
REMOTE_URI = re.compile(r"\b(?:gs|s3|minio)://[^\s\"'\\,}]+")
STATE_DIR = "run-local"


class RunLocalError(RuntimeError):
    """The package cannot be run here, or a task failed; the message says which and where its log is."""


@dataclasses.dataclass
class TaskRun:
    name: str
    state: str = "NOT RUN"          # COMPLETE, CACHED, FAILED, NOT RUN (KFP's execution states)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0        # of the task's process tree (0 for a cached task)
    log: Optional[str] = None
    outputs: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)  # key -> {id, uri, metadata}
    parameters: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunReport:
    run_id: str
    pipeline: str
    run_dir: str
    tasks: List[TaskRun]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(t.state in ("COMPLETE", "CACHED") for t in self.tasks)

    def state(self, task: str) -> str:
        return next(t.state for t in self.tasks if t.name == task)

    def to_json(self) -> Dict[str, Any]:
        return {"run_id": self.run_id, "pipeline": self.pipeline, "seconds": self.seconds,
                "peak_rss_mb": max((t.peak_rss_mb for t in self.tasks), default=0.0),
                "tasks": [dataclasses.asdict(t) for t in self.tasks]}


def load_spec(package: str) -> Dict[str, Any]:
    """The package's PipelineSpec (its first YAML document), checked with kfp's proto."""
    with open(package, encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    if not documents:
        raise RunLocalError(f"{package}: empty, not a compiled pipeline")
    json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    return documents[0]


def dag_order(tasks: Dict[str, Any]) -> List[str]:
    """Tasks after everything they depend on or read from; ties alphabetically."""
    needs = {}
    for name, task in tasks.items():
        producers = set(task.get("dependentTasks", []))
        producers |= {a["taskOutputArtifact"]["producerTask"] for a in task.get("inputs", {}).get("artifacts", {}).values()
                      if "taskOutputArtifact" in a}
        producers |= {p["taskOutputParameter"]["producerTask"] for p in task.get("inputs", {}).get("parameters", {}).values()
                      if "taskOutputParameter" in p}
        unknown = producers - set(tasks)
        if unknown:  # KFP's driver: "producer task, X, not in tasks"
            raise RunLocalError(f"task {name} reads from {sorted(unknown)}, which the pipeline does not have")
        needs[name] = producers
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and needs[n] <= set(order))
        if not ready:
            raise RunLocalError(f"a cycle among {sorted(set(tasks) - set(order))}")
        order.append(ready[0])
    return order


def as_text(value: Any) -> str:
    """KFP's PbValueToText: what a STRING-typed input receives from a number, bool or struct."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return json.dumps(value, separators=(",", ":"))


def from_mlmd(metadata: Dict[str, Any]) -> Dict[str, Any]:
    """An artifact's metadata as the driver reads it back from ML Metadata: numbers become doubles,
    lists and structs come back wrapped."""
    converted = {}
    for key, value in metadata.items():
        if isinstance(value, bool):
            converted[key] = float(value)
        elif isinstance(value, (int, float)):
            converted[key] = float(value)
        elif isinstance(value, list):
            converted[key] = {"list": value}
        elif isinstance(value, dict):
            converted[key] = {"struct": value}
        else:
            converted[key] = value
    return converted


class Store:
    """The stand-in's ML Metadata: artifacts by id and KFP's cache entries, kept as one JSON file."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {"next_id": 1, "artifacts": {}, "cache": {}}

    def record(self, artifact: Dict[str, Any], key: str) -> str:
        artifact_id = str(self.data["next_id"])
        self.data["next_id"] += 1
        self.data["artifacts"][artifact_id] = {"uri": artifact["uri"], "metadata": {
            **artifact.get("metadata", {}), "display_name": key, "store_session_info": "{}"}}
        return artifact_id

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1))


class LocalRun:
    """One run of a package; see the module docstring."""

    def __init__(self, spec: Dict[str, Any], pipeline_root: str, params: Dict[str, str], run_id: Optional[str],
                 python: str, repo: Path, echo: Callable[[str], None]):
        self.spec, self.python, self.repo, self.echo = spec, python, repo, echo
        self.pipeline = spec["pipelineInfo"]["name"]
        self.root = os.path.abspath(pipeline_root)
        self.run_id = run_id or time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.run_dir = os.path.join(self.root, self.pipeline, self.run_id)
        self.tasks = spec["root"]["dag"]["tasks"]
        self.store = Store(Path(self.root) / STATE_DIR / "metadata.json")
        self.params = self._run_parameters(params)
        self.done: Dict[str, TaskRun] = {}

    def _run_parameters(self, given: Dict[str, str]) -> Dict[str, Any]:
        declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
        values = {name: d["defaultValue"] for name, d in declared.items() if "defaultValue" in d}
        for name, text in given.items():
            if name not in declared:
                raise RunLocalError(f"--param {name}: the pipeline's parameters are {sorted(declared)}")
            values[name] = text if declared[name]["parameterType"] == "STRING" else json.loads(text)
        missing = sorted(n for n, d in declared.items() if n not in values and not d.get("isOptional"))
        if missing:
            raise RunLocalError(f"no value for {', '.join(missing)}: pass " + " ".join(f"--param {m}=..." for m in missing))
        return values

    def _inputs(self, task: Dict[str, Any], component: Dict[str, Any]) -> Dict[str, Any]:
        parameters, artifacts = {}, {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in spec:
                parameters[key] = spec["runtimeValue"]["constant"]
            elif "componentInputParameter" in spec:
                if spec["componentInputParameter"] in self.params:
                    parameters[key] = self.params[spec["componentInputParameter"]]
            elif "taskOutputParameter" in spec:
                producer = self.done[spec["taskOutputParameter"]["producerTask"]]
                parameters[key] = producer.parameters[spec["taskOutputParameter"]["outputParameterKey"]]
            else:
                raise RunLocalError(f"input parameter {key}: {sorted(spec)} is not supported here")
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        for key, value in parameters.items():
            if declared.get(key, {}).get("parameterType") == "STRING":
                parameters[key] = as_text(value)
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in spec:
                raise RunLocalError(f"input artifact {key}: {sorted(spec)} is not supported here")
            output = self.done[spec["taskOutputArtifact"]["producerTask"]].outputs[
                spec["taskOutputArtifact"]["outputArtifactKey"]]
            stored = self.store.data["artifacts"][output["id"]]
            artifacts[key] = {"artifacts": [{"name": output["id"], "type": {"instanceSchema": ""}, "uri": stored["uri"],
                                             "metadata": from_mlmd(stored["metadata"])}]}
        return {"parameterValues": parameters, "artifacts": artifacts}

    def _outputs(self, name: str, component: Dict[str, Any], task_dir: str) -> Dict[str, Any]:
        salt = uuid.uuid4().hex
        definitions = component.get("outputDefinitions", {})
        return {
            "artifacts": {key: {"artifacts": [{"type": d["artifactType"], "uri": os.path.join(
                self.run_dir, name, salt, key), "metadata": d.get("metadata", {})}]}
                for key, d in definitions.get("artifacts", {}).items()},
            "parameters": {key: {"outputFile": os.path.join(task_dir, "outputs", key)}
                           for key in definitions.get("parameters", {})},
            "outputFile": os.path.join(task_dir, "kfp_outputs", "output_metadata.json"),
        }

    def _cache_key(self, executor_input, component, container) -> str:
        """KFP's cacheutils.GenerateCacheKey: what a cached task must have had."""
        key = {
            "inputArtifactNames": {k: [a["name"] for a in v["artifacts"]] for k, v in executor_input["inputs"]["artifacts"].items()},
            "inputParameterValues": executor_input["inputs"]["parameterValues"],
            "outputArtifactsSpec": {k: {f: v for f, v in a["artifacts"][0].items() if f != "uri"}
                                    for k, a in executor_input["outputs"]["artifacts"].items()},
            "outputParametersSpec": {k: component["outputDefinitions"]["parameters"][k]["parameterType"]
                                     for k in executor_input["outputs"]["parameters"]},
            "containerSpec": {"image": container.get("image"), "cmdArgs": container.get("command", []) + container.get("args", [])},
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return f"pipeline/{self.pipeline}:{digest}"

    def _argv(self, container: Dict[str, Any], executor_input: Dict[str, Any]) -> List[str]:
        """The command and arguments as compiled, placeholders substituted as the launcher does."""
        message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput())
        values = {"{{$}}": json_format.MessageToJson(message, indent=None)}
        for key, value in executor_input["inputs"]["parameterValues"].items():
            values[f"{{{{$.inputs.parameters['{key}']}}}}"] = as_text(value)
        for key, spec in executor_input["outputs"]["parameters"].items():
            values[f"{{{{$.outputs.parameters['{key}'].output_file}}}}"] = spec["outputFile"]
        for section in ("inputs", "outputs"):
            for key, artifact_list in executor_input[section]["artifacts"].items():
                for field in ("uri", "path"):
                    values[f"{{{{$.{section}.artifacts['{key}'].{field}}}}}"] = artifact_list["artifacts"][0]["uri"]
        argv = []
        for arg in container.get("command", []) + container.get("args", []):
            for placeholder, value in values.items():
                arg = arg.replace(placeholder, value)
            if "{{$" in arg:
                raise RunLocalError(f"placeholder in {arg[:120]!r} is not one this stand-in substitutes")
            argv.append(arg)
        return [self.python if argv and argv[0] in ("python", "python3") else argv[0]] + argv[1:]

    def _execute(self, argv: List[str], log_path: str) -> float:
        """Runs the task's command; returns its process tree's peak RSS in MB."""
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1",  # as the Dockerfile sets it
               "PYTHONPATH": os.pathsep.join([str(self.repo)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(argv, cwd=self.repo, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                raise RunLocalError(f"exit status {process.returncode}; log {log_path}:\n{f.read()[-4000:]}")
        return usage.ru_maxrss / 1024.0

    def _collect(self, result: TaskRun, executor_input, component) -> None:
        """The ExecutorOutput merged into the provisioned outputs, recorded; output parameters collected."""
        output_file = executor_input["outputs"]["outputFile"]
        output = pipeline_spec_pb2.ExecutorOutput()
        if os.path.exists(output_file):
            with open(output_file, encoding="utf-8") as f:
                json_format.Parse(f.read(), output)  # strictly, as the launcher's protojson.Unmarshal
        produced = json_format.MessageToDict(output)
        result.parameters = dict(produced.get("parameterValues", {}))
        for key, spec in executor_input["outputs"]["parameters"].items():
            if key not in result.parameters:
                ptype = component["outputDefinitions"]["parameters"][key]["parameterType"]
                with open(spec["outputFile"], encoding="utf-8") as f:
                    result.parameters[key] = f.read() if ptype == "STRING" else json.loads(f.read())
        for key, artifact_list in executor_input["outputs"]["artifacts"].items():
            artifact = copy.deepcopy(artifact_list["artifacts"][0])
            written = produced.get("artifacts", {}).get(key, {}).get("artifacts", [])
            if written:
                artifact["uri"] = written[0].get("uri") or artifact["uri"]
                artifact["metadata"] = {**artifact.get("metadata", {}), **written[0].get("metadata", {})}
            artifact_id = self.store.record(artifact, key)
            result.outputs[key] = {"id": artifact_id, "uri": artifact["uri"], "metadata": artifact.get("metadata", {})}

    def run_task(self, name: str) -> TaskRun:
        task = self.tasks[name]
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        if "container" not in executor or "triggerPolicy" in task or "iteratorPolicy" in task:
            raise RunLocalError(f"task {name}: only plain container tasks run here ({sorted(executor)})")
        result, started = TaskRun(name), time.time()
        task_dir = os.path.join(self.run_dir, "tasks", name)
        os.makedirs(os.path.join(task_dir, "outputs"), exist_ok=True)
        executor_input = {"inputs": self._inputs(task, component), "outputs": self._outputs(name, component, task_dir)}
        cache_key = self._cache_key(executor_input, component, executor["container"])
        cached = self.store.data["cache"].get(cache_key) if task.get("cachingOptions", {}).get("enableCache") else None
        if cached:
            result.state, result.parameters = "CACHED", cached["parameters"]
            result.outputs = {k: {"id": i, **{f: self.store.data["artifacts"][i][f] for f in ("uri", "metadata")}}
                              for k, i in cached["outputs"].items()}
            return result
        with_defaults = copy.deepcopy(executor_input)  # the launcher's addDefaultParams: not in the cache key
        for key, spec in component.get("inputDefinitions", {}).get("parameters", {}).items():
            if "defaultValue" in spec:
                with_defaults["inputs"]["parameterValues"].setdefault(key, spec["defaultValue"])
        for artifact_list in executor_input["outputs"]["artifacts"].values():
            os.makedirs(os.path.dirname(artifact_list["artifacts"][0]["uri"]), exist_ok=True)
        with open(os.path.join(task_dir, "executor_input.json"), "w", encoding="utf-8") as f:
            json.dump(with_defaults, f, indent=1)
        result.log = os.path.join(task_dir, "task.log")
        try:
            result.peak_rss_mb = self._execute(self._argv(executor["container"], with_defaults), result.log)
            self._collect(result, executor_input, component)
        except (RunLocalError, json_format.ParseError, OSError) as error:
            result.state, result.seconds = "FAILED", round(time.time() - started, 1)
            raise RunLocalError(f"task {name} failed: {error}") from None
        finally:
            self.store.save()
        result.state, result.seconds = "COMPLETE", round(time.time() - started, 1)
        if task.get("cachingOptions", {}).get("enableCache"):
            self.store.data["cache"][cache_key] = {"outputs": {k: o["id"] for k, o in result.outputs.items()},
                                                   "parameters": result.parameters, "run": self.run_id}
            self.store.save()
        return result

    def run(self) -> RunReport:
        started = time.time()
        order = dag_order(self.tasks)
        images = sorted({e["container"].get("image", "?") for e in self.spec["deploymentSpec"]["executors"].values()
                         if "container" in e})
        self.echo(f"Run {self.run_id} of {self.pipeline}: {len(order)} tasks; image {', '.join(images)} stands for "
                  f"{self.python} with {self.repo} on PYTHONPATH; pipeline root {self.root}")
        results = [TaskRun(name) for name in order]
        failure = None
        for index, name in enumerate(order):
            try:
                results[index] = self.done[name] = self.run_task(name)
            except RunLocalError as error:
                results[index].state, failure = "FAILED", error
                results[index].log = os.path.join(self.run_dir, "tasks", name, "task.log")
            result = results[index]
            memory = f", peak RSS {result.peak_rss_mb:.0f} MB" if result.peak_rss_mb else ""
            self.echo(f"  {name:28s} {result.state:8s} {result.seconds:6.1f} s{memory}")
            if failure:
                break
        report = RunReport(self.run_id, self.pipeline, self.run_dir, results, round(time.time() - started, 1))
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, "run-local.json"), "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=1)
        if failure:
            raise RunLocalError(f"{failure}\n(run report: {os.path.join(self.run_dir, 'run-local.json')})")
        return report


def run(package: str, pipeline_root: str, params: Optional[Dict[str, str]] = None, run_id: Optional[str] = None,
        allow_remote: bool = False, python: str = sys.executable, repo: Path = REPO_ROOT,
        echo: Callable[[str], None] = print) -> RunReport:
    """Runs every task of the package on this machine (see the module docstring); RunLocalError when a
    task fails or the package cannot run here."""
    spec = load_spec(package)
    params = dict(params or {})
    if not allow_remote:
        remote = sorted(set(REMOTE_URI.findall(json.dumps(spec) + " " + " ".join(params.values()))))
        if remote:
            raise RunLocalError(
                f"{package} reads or writes {', '.join(remote)}: a dry run here would touch them. Compile the dry-run "
                "package with local paths (DEEP_EMOTION_KFP_SERVING_DIR, DEEP_EMOTION_KFP_SCHEMA_PATH, --param "
                "data_root=...), or pass --allow-remote-uris.")
    return LocalRun(spec, pipeline_root, params, run_id, python, repo, echo).run()

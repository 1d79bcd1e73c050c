"""A stand-in for a Kubeflow Pipelines 2.x API server: no cluster can run here.

It implements only the v2beta1 REST endpoints that kfp 2.5's Client calls for `deep-emotion kfp
submit|schedule` (healthz, pipelines list/upload/upload_version/versions, experiments list/create,
runs create, recurring runs list/create/delete), keeps what a real server would store, and records
every request so tests can assert what the cluster would have been asked to do. Uploaded packages
are parsed as a PipelineSpec, as the real server rejects what it cannot parse.
"""
import email.parser
import email.policy
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlparse

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: Any = None  # parsed JSON, or for uploads the uploaded file's text


@dataclass
class KfpState:
    pipelines: List[dict] = field(default_factory=list)
    versions: List[dict] = field(default_factory=list)  # each with the uploaded spec under "pipeline_spec"
    experiments: List[dict] = field(default_factory=list)
    runs: List[dict] = field(default_factory=list)
    recurring_runs: List[dict] = field(default_factory=list)


class FakeKfpServer:
    """`with FakeKfpServer(token="t") as kfp: ...` serves on kfp.url until the block ends."""

    def __init__(self, token: Optional[str] = None, login_redirect: bool = False):
        self.token = token  # when set, requests without "Authorization: Bearer <token>" get 401
        self.login_redirect = login_redirect  # answer every request like an oauth2 proxy: 302 to a login page
        self.state = KfpState()
        self.requests: List[Request] = []
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method: str, path: str) -> List[Request]:
        return [r for r in self.requests if r.method == method and r.path == API + path]

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # --- the API ------------------------------------------------------------------------------------
    def handle(self, request: Request):
        """(status, JSON-able body) for one request."""
        s, path, q = self.state, request.path[len(API):], request.query
        route = (request.method, path)
        if route == ("GET", "/healthz"):
            return 200, {"multi_user": False}
        if route == ("GET", "/pipelines"):
            return 200, {"pipelines": _filtered(s.pipelines, q), "total_size": len(s.pipelines)}
        if route == ("POST", "/pipelines/upload"):
            if any(p["display_name"] == q["name"] for p in s.pipelines):
                return 409, {"error": f"pipeline {q['name']} already exists"}
            pipeline = {"pipeline_id": self._new_id("pipeline"), "display_name": q["name"],
                        "namespace": q.get("namespace", "")}
            s.pipelines.append(pipeline)
            self._add_version(pipeline["pipeline_id"], q["name"], request.body)
            return 200, pipeline
        if route == ("POST", "/pipelines/upload_version"):
            if not any(p["pipeline_id"] == q["pipelineid"] for p in s.pipelines):
                return 404, {"error": f"no pipeline {q['pipelineid']}"}
            return 200, self._add_version(q["pipelineid"], q["name"], request.body)
        if request.method == "GET" and path.startswith("/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[2]
            versions = [v for v in reversed(s.versions) if v["pipeline_id"] == pipeline_id]  # newest first
            return 200, {"pipeline_versions": versions[:int(q.get("page_size", 10))], "total_size": len(versions)}
        if route == ("GET", "/experiments"):
            return 200, {"experiments": _filtered(s.experiments, q), "total_size": len(s.experiments)}
        if route == ("POST", "/experiments"):
            experiment = {**request.body, "experiment_id": self._new_id("experiment")}
            s.experiments.append(experiment)
            return 200, experiment
        if route == ("POST", "/runs"):
            run = {**request.body, "run_id": self._new_id("run"), "state": "PENDING"}
            s.runs.append(run)
            return 200, run
        if route == ("GET", "/recurringruns"):
            found = [r for r in _filtered(s.recurring_runs, q)
                     if "experiment_id" not in q or r["experiment_id"] == q["experiment_id"]]
            return 200, {"recurringRuns": found}  # sic: the one camelCase field of the v2beta1 API
        if route == ("POST", "/recurringruns"):
            recurring = {**request.body, "recurring_run_id": self._new_id("recurring"), "status": "ENABLED"}
            s.recurring_runs.append(recurring)
            return 200, recurring
        if request.method == "DELETE" and path.startswith("/recurringruns/"):
            s.recurring_runs = [r for r in s.recurring_runs if r["recurring_run_id"] != path.split("/")[2]]
            return 200, {}
        return 404, {"error": f"not implemented here: {request.method} {request.path}"}

    def _add_version(self, pipeline_id: str, name: str, package_text: str) -> dict:
        spec = json_format.ParseDict(yaml.safe_load(package_text), pipeline_spec_pb2.PipelineSpec())
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": self._new_id("version"), "display_name": name,
                   "pipeline_spec": json_format.MessageToDict(spec)}
        self.state.versions.append(version)
        return version

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                url = urlparse(self.path)
                request = Request(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()})
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append(request)
                if fake.login_redirect:
                    self.send_response(302)
                    self.send_header("Location", "/dex/auth?client_id=kubeflow-oidc-authservice")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.token and request.headers.get("authorization") != f"Bearer {fake.token}":
                    return self._reply(401, {"error": "Unauthenticated", "code": 16})
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    request.body = _uploaded_file(content_type, raw)
                elif raw:
                    request.body = json.loads(raw)
                try:
                    status, body = fake.handle(request)
                except Exception as e:  # a malformed request: what a real server answers with 400
                    status, body = 400, {"error": f"{type(e).__name__}: {e}"}
                self._reply(status, body)

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def _filtered(items: List[dict], query: Dict[str, str]) -> List[dict]:
    """Applies the EQUALS predicates of the filter the client sends (it filters on display_name)."""
    if "filter" in query:
        for predicate in json.loads(query["filter"])["predicates"]:
            if predicate["operation"] not in (1, "EQUALS"):
                raise ValueError(f"only EQUALS filters are implemented here: {predicate}")
            items = [i for i in items if i.get(predicate["key"]) == predicate["stringValue"]]
    return items


def _uploaded_file(content_type: str, raw: bytes) -> str:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True).decode()
    raise ValueError("no uploadfile part in the upload")

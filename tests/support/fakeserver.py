"""A tiny real HTTP server on loopback for the client tests: routes are plain functions, requests are recorded."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, bytes, or an iterable of bytes (streamed, then the connection closes)
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Reply:
    return Reply(status, {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
                 {"Content-Type": "application/problem+json"})


Route = Callable[[Request, re.Match], Reply]


class FakeServer:
    """Answers `(method, path regex)` routes; everything else is a 404 problem."""

    def __init__(self, port: int = 0):
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with server.lock:
                    server.requests.append(req)
                self.send(server.dispatch(req))

            def send(self, reply: Reply) -> None:
                body = reply.body
                streamed = not isinstance(body, (bytes, str, dict, list, type(None)))
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    reply.headers.setdefault("Content-Type", "application/json")
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if not streamed:
                    self.send_header("Content-Length", str(len(body or b"")))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if streamed:
                        for chunk in body:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                    elif body:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, method: str, pattern: str, fn: Route) -> None:
        self.routes.append((method, re.compile(f"^/api/v1{pattern}$"), fn))

    def dispatch(self, req: Request) -> Reply:
        for method, pattern, fn in self.routes:
            match = pattern.match(req.path)
            if match and method == req.method:
                return fn(req, match)
        return problem(404, "Not Found", f"no route {req.method} {req.path}")

    def calls(self, method: str, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == "/api/v1" + path]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "FakeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def sse(events: Iterable[tuple[str, Any]], delay: float = 0.0) -> Iterable[bytes]:
    """Server-Sent Events for (event type, JSON data) pairs, with a keep-alive comment first."""
    import time

    yield b": keep-alive\n\n"
    for kind, data in events:
        if delay:
            time.sleep(delay)
        yield f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


class FakeApi:
    """A small in-memory imitation of DESIGN §6 for CLI tests: each job advances one epoch per look."""

    def __init__(self, server: FakeServer, events: str = "sse"):
        self.server, self.events, self.jobs, self.datasets = server, events, {}, {}
        self.last_event_ids: list[str | None] = []
        r = server.route
        r("POST", "/jobs", self.submit)
        r("GET", "/jobs", lambda req, m: Reply(200, {"items": list(reversed(self.jobs.values())), "next_cursor": None}))
        r("GET", r"/jobs/(\w+)", lambda req, m: self.found(m, lambda job: Reply(200, self.advance(job))))
        r("GET", r"/jobs/(\w+)/history", lambda req, m: self.found(m, self.history))
        r("GET", r"/jobs/(\w+)/events", lambda req, m: self.found(m, lambda job: self.stream(job, req)))
        r("POST", r"/jobs/(\w+)/cancel", lambda req, m: self.found(m, self.cancel))
        r("DELETE", r"/jobs/(\w+)", lambda req, m: self.found(m, self.delete))
        r("GET", r"/jobs/(\w+)/model", lambda req, m: self.found(m, self.model))
        r("POST", r"/jobs/(\w+)/predict", lambda req, m: self.found(m, lambda job: self.predict(job, req)))
        r("POST", "/datasets", self.upload)
        r("GET", "/datasets", lambda req, m: Reply(200, {"items": list(self.datasets.values())}))
        r("GET", r"/datasets/(\w+)", lambda req, m: Reply(200, self.datasets[m.group(1)]) if m.group(1) in self.datasets
          else problem(404, "Not Found", f"no dataset with id {m.group(1)!r}"))
        r("DELETE", r"/datasets/(\w+)", self.delete_dataset)
        r("GET", "/catalog", lambda req, m: Reply(200, {"backends": ["numpy", "sklearn", "keras"],
                                                        "activations": {"relu": {}, "leaky_relu": {"alpha": 0.01}}}))
        r("GET", "/workers", lambda req, m: Reply(200, {"items": [  # api/workers.py's shape
            {"name": "w1", "queues": ["cpu"], "device": "cpu", "concurrency": 2, "hostname": "h", "pid": 7,
             "current_job": "j9", "current_jobs": ["j9", "j8"], "started_at": "2026-01-01T00:00:00Z",
             "last_seen": "2026-01-01T00:00:05Z"}]}))
        r("GET", "/health", lambda req, m: Reply(200, {"status": "ok", "checks": {  # api/health.py's shape
            "database": {"ok": True, "detail": "ok"}, "broker": {"ok": True, "detail": "ok"}}}))

    def submit(self, req: Request, match: re.Match) -> Reply:
        spec = req.json()
        layers = spec.get("model", {}).get("layers", [])
        bad = [i for i, layer in enumerate(layers) if layer.get("activation") == "bogus"]
        if bad:
            return problem(422, "Unprocessable Content", "invalid spec",
                           errors=[{"loc": f"model.layers[{bad[0]}].activation", "msg": "unknown activation 'bogus'"}])
        job_id = f"j{len(self.jobs) + 1}"
        epochs = spec.get("training", {}).get("epochs", 3)
        self.jobs[job_id] = {"id": job_id, "name": spec.get("name"), "status": "queued", "backend": "numpy",
                             "device": "cpu", "spec": spec, "progress": {"epoch": 0, "epochs": epochs},
                             "metrics": {}, "error": None, "attempts": 0, "queue_position": 1,
                             "created_at": "2026-01-01T00:00:00Z"}
        return Reply(201, self.jobs[job_id], {"Location": f"/api/v1/jobs/{job_id}"})

    def found(self, match: re.Match, fn: Callable[[dict], Reply]) -> Reply:
        job = self.jobs.get(match.group(1))
        return fn(job) if job else problem(404, "Not Found", f"no job with id {match.group(1)!r}")

    def advance(self, job: dict) -> dict:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        job["status"], job["attempts"] = "running", 1
        job.pop("queue_position", None)
        progress = job["progress"]
        progress["epoch"] += 1
        if progress["epoch"] >= progress["epochs"]:
            failing = "fail" in (job["name"] or "")
            job["status"] = "failed" if failing else "succeeded"
            job["error"] = {"code": "diverged", "message": "loss became non-finite in epoch 2"} if failing else None
            job["metrics"] = {"loss": 0.01, "accuracy": 1.0}
        return job

    def rows(self, job: dict) -> list[dict]:
        return [{"epoch": e, "loss": 1.0 / e, "accuracy": min(1.0, 0.5 + e / 10), "val_loss": None, "time": 0.1 * e}
                for e in range(1, job["progress"]["epoch"] + 1)]

    def history(self, job: dict) -> Reply:
        return Reply(200, {"epochs": self.rows(job)})

    def stream(self, job: dict, req: Request) -> Reply:
        if self.events == "missing":
            return problem(404, "Not Found", "no route")

        self.last_event_ids.append(req.headers.get("last-event-id"))

        def events():
            while job["status"] not in ("succeeded", "failed", "cancelled"):
                self.advance(job)
                yield ("progress", {**self.rows(job)[-1], "epochs": job["progress"]["epochs"]})
                if self.events == "broken":
                    return
            yield ("status", job)

        return Reply(200, sse(events(), delay=0.01), {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    def cancel(self, job: dict) -> Reply:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return problem(409, "Conflict", f"job {job['id']} already {job['status']}")
        job["status"], job["error"] = "cancelled", {"code": "cancelled", "message": "cancelled by the user"}
        return Reply(202, job)

    def delete(self, job: dict) -> Reply:
        if job["status"] not in ("succeeded", "failed", "cancelled"):
            return problem(409, "Conflict", "job not finished")
        del self.jobs[job["id"]]
        return Reply(204)

    def model(self, job: dict) -> Reply:
        if job["status"] != "succeeded":
            return problem(409, "Conflict", "job has not succeeded")
        return Reply(200, b"PK\x03\x04fake-model-bytes" * 100, {"Content-Type": "application/octet-stream",
                                                                  "Content-Disposition": 'attachment; filename="xor.npz"'})

    def predict(self, job: dict, req: Request) -> Reply:
        inputs = req.json()["inputs"]
        predictions = [int(sum(row) == 1) for row in inputs]
        return Reply(200, {"predictions": predictions,
                           "probabilities": [[0.9, 0.1] if p == 0 else [0.2, 0.8] for p in predictions]})

    def upload(self, req: Request, match: re.Match) -> Reply:
        if not req.headers.get("content-type", "").startswith("multipart/form-data"):
            return problem(415, "Unsupported Media Type", "multipart expected")
        dataset_id = f"d{len(self.datasets) + 1}"
        fields = {m.group(1).decode(): m.group(2).decode()
                  for m in re.finditer(rb'form-data; name="([^"]+)"\r\n\r\n([^\r]*)\r\n', req.body)}
        data = re.search(rb'name="file"; filename="[^"]*"\r\n(?:[^\r]+\r\n)*\r\n(.*?)\r\n--', req.body, re.S)
        last = (data.group(1).split(b"\n", 1)[0].decode(errors="replace").split(",")[-1].strip() if data else None)
        self.datasets[dataset_id] = {"id": dataset_id, "name": fields.get("name"), "task": "classification",
                                     "n_samples": 2, "n_features": 1, "n_classes": 2, "size_bytes": 14,
                                     "format": fields.get("format"), "target": fields.get("target", last),
                                     "sha256": hashlib.sha256(data.group(1) if data else b"").hexdigest()}
        return Reply(201, self.datasets[dataset_id])

    def delete_dataset(self, req: Request, match: re.Match) -> Reply:
        if self.datasets.pop(match.group(1), None) is None:
            return problem(404, "Not Found", "no such dataset")
        return Reply(204)


def last_json(out: str):
    """The JSON object a `--json` command prints as its last stdout line."""
    return json.loads(out.strip().splitlines()[-1])

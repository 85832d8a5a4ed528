"""A small threaded HTTP server base shared by the API stand-ins.

Each stand-in subclasses :class:`StandInServer`, registers routes with :meth:`route`, and is started on an
ephemeral port of 127.0.0.1 in a background thread. Every request is recorded in :attr:`requests` so tests
can assert on exactly what the project sent.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson


@dataclass
class Request:
    """One HTTP request as the stand-in received it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the route pattern
    received_at: float = field(default_factory=time.time)
    arrived: float = field(default_factory=time.monotonic)  # when its request line came in (monotonic clock)

    def json(self) -> Any:
        """The body parsed as JSON (orjson: strict RFC 8259, so NaN or a stray byte is an error, as at the real
        APIs); raises ``ValueError``."""
        return orjson.loads(self.body) if self.body else None

    def query_dict(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, value in self.query:
            out.setdefault(key, []).append(value)
        return out


@dataclass
class Fault:
    """A scripted failure: the next ``times`` requests matching ``method`` and ``path_regex`` get it."""

    path_regex: str
    status: int = 500
    times: int = 1
    method: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without an answer (a reset mid-request)
    raw: bytes | None = None  # send these bytes as the body, e.g. truncated JSON
    delay: float = 0.0  # sleep before answering (client time-outs)
    skip: int = 0  # let this many matching requests through first
    cut: int | None = None  # answer as usual, but close the connection after this many bytes of the body
    apply: bool = False  # handle the request for real, then answer ``delay`` late (cut short with ``cut``)


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON; bytes -> raw; None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    cut: int | None = None  # a reset mid-body: the headers announce the whole body, only this many bytes follow


Handler = Callable[[Request], Response]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: don't wait for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests instead
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header tells the stand-in's clock (the Stripe account's, for the Stripe stand-in)."""
        return super().date_time_string(self.server.stand_in.clock() if timestamp is None else timestamp)

    def parse_request(self) -> bool:
        self._arrived = time.monotonic()  # the request line is in: the latency clock starts (headers, body follow)
        return super().parse_request()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            arrived=self._arrived,
        )
        response = self.server.stand_in.dispatch(request)
        if response is None:  # fault injection: drop the connection without answering
            self.close_connection = True
            return
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        if payload or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if response.cut is not None:  # the connection dies mid-body
            self.wfile.write(payload[: response.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], stand_in: StandInServer) -> None:
        self.stand_in = stand_in
        super().__init__(address, _RequestHandler)


class StandInServer:
    """Base class: routing, request log, latency injection, start/stop on 127.0.0.1."""

    name = "stand-in"

    #: ``latency`` is added before each request is handled (False), or is the least time a request takes, its
    #: handling included, as an API's response time is (True; the reverse-ETL benchmark's stand-ins).
    latency_includes_processing = False

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.latency = latency
        self.requests: list[Request] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.RLock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[Fault] = []

    def clock(self) -> float:
        """Now, as this API sees it (the ``Date`` header)."""
        return time.time()

    # -- routing ---------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` and a path pattern such as ``/v1/customers/{id}``."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method.upper(), re.compile(regex), handler))

    def dispatch(self, request: Request) -> Response | None:
        with self._lock:
            self.requests.append(request)
        if not self.latency:
            return self._answer(request)
        if not self.latency_includes_processing:
            time.sleep(self.latency)
            return self._answer(request)
        response = self._answer(request)  # the latency counts from its arrival: reading it took some already
        time.sleep(max(0.0, request.arrived + self.latency - time.monotonic()))
        return response

    def _answer(self, request: Request) -> Response | None:
        fault = self._take_fault(request)
        if fault is not None and (fault.apply or fault.cut is not None):
            response = self._route(request)
            time.sleep(fault.delay)
            if response is not None:
                response.cut = fault.cut
            return response
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                return None
            if fault.raw is not None:
                return Response(fault.status, fault.raw, dict(fault.headers))
            return Response(fault.status, fault.body, dict(fault.headers))
        return self._route(request)

    def _route(self, request: Request) -> Response | None:
        allowed: list[str] = []
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                return handler(request)
            except Exception as exc:  # a stand-in bug must show as a 500, not hang the client
                return self.internal_error(exc)
        if allowed:
            return self.not_found(request, method_not_allowed=True)
        return self.not_found(request)

    def inject(self, fault: Fault) -> None:
        """Script a failure for the next matching requests (see :class:`Fault`)."""
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times <= 0:
                    continue
                if fault.method and fault.method.upper() != request.method:
                    continue
                if not re.search(fault.path_regex, request.path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        return Response(404, {"error": f"no route for {request.method} {request.path}"})

    def internal_error(self, exc: Exception) -> Response:
        return Response(500, {"error": f"stand-in error: {type(exc).__name__}: {exc}"})

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._httpd = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StandInServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_to(self, method: str, path_regex: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()


def serve_until_stopped(*, watch_stdin: bool) -> None:
    """Block until SIGTERM or SIGINT, or (``watch_stdin``) until standard input closes: how the stand-ins'
    own processes (``serve_stripe``, ``serve_destinations``) end with the benchmark that started them."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if watch_stdin:

        def watch() -> None:
            while sys.stdin.readline():
                pass
            stop.set()

        threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
    while not stop.wait(0.5):
        pass

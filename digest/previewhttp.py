"""The live preview's HTTP side: the routes, the Host check in front of them, and the pages it serves.

Routes: /  the preview page (desktop/mobile width, light/dark, email/web/text, and the language when there are
several);  /digest.html  the email (?scheme=dark|light forces the colour scheme);  /index.html  the web
version;  /digest.txt  the text part; a further language's three under its folder (/fr/digest.html,
/pt-br/digest.txt);  /status  JSON;  /events  server-sent events, one per build. Any other path is 404: only
these names are served, never a file looked up by the path.
"""

from __future__ import annotations

import functools
import html as htmllib
import json
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

HEARTBEAT_SECONDS = 10.0
PAGES = ("digest.html", "index.html", "digest.txt")  # what the preview serves of each language's digest


@dataclass(frozen=True)
class Language:
    """A language the build made a digest in, and the folder its files are served under ("" for the main)."""

    code: str
    prefix: str  # "", "fr/", "pt-br/"


@dataclass(frozen=True)
class BuildState:
    """The outcome of the latest build: the served files (by path: "digest.html", "fr/digest.html"), or the
    error; and the languages, the main one first (a failed build keeps the last good build's)."""

    generation: int
    ok: bool
    error: str
    label: str
    item_count: int
    files: dict[str, bytes]
    languages: tuple[Language, ...] = ()

    def names(self) -> frozenset[str]:
        """The paths answered with a digest's file, or with the error while the build is broken: the main
        language's at the top, each known further language's under its folder."""
        prefixes = {"", *(lang.prefix for lang in self.languages)}
        return frozenset(prefix + name for prefix in prefixes for name in PAGES)

    def status(self) -> dict[str, Any]:
        """What /status and /events report."""
        return {
            "generation": self.generation,
            "ok": self.ok,
            "error": self.error,
            "window": self.label,
            "items": self.item_count,
            "languages": [{"code": lang.code, "path": "/" + lang.prefix} for lang in self.languages],
        }


class Served(Protocol):
    """What the routes read of the preview (digest/preview.py's Preview): its latest build, the Host names
    it answers, and the wait for the next build."""

    hosts: frozenset[str]

    @property
    def state(self) -> BuildState: ...

    @property
    def stopping(self) -> bool: ...

    def wait_for_change(self, generation: int, timeout: float) -> BuildState: ...


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values the preview answers: its own address and port, as a browser on this machine
    writes them (lower case; a browser leaves out the port when it is 80)."""
    names = {host.lower(), "127.0.0.1", "localhost"}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts)


def force_scheme(html: str, scheme: str) -> str:
    """Make the page's dark-mode CSS apply (dark) or never apply (light), whatever the viewer's setting."""
    query = "(prefers-color-scheme: dark)"
    if scheme == "dark":
        return html.replace(query, "all").replace("(prefers-color-scheme:dark)", "all")
    if scheme == "light":
        return html.replace(query, "not all").replace("(prefers-color-scheme:dark)", "not all")
    return html


def error_page(message: str) -> str:
    """The page shown in place of the digest while the build is broken; it retries by itself."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'><title>Build failed</title>"
        "<style>body{font:15px/1.5 system-ui,sans-serif;margin:24px;color:#1f2933;background:#fff}"
        "h1{color:#b42318;font-size:20px}"
        "pre{white-space:pre-wrap;background:#fdf2f1;border:1px solid #f4c7c3;"
        "padding:12px;border-radius:6px;font-size:14px}</style></head><body>"
        "<h1>The digest did not build</h1>"
        f"<pre id='error'>{htmllib.escape(message)}</pre>"
        "<p>Fix the file and save it: the preview rebuilds by itself.</p></body></html>"
    )


class Server(ThreadingHTTPServer):
    """The preview's HTTP server: one thread per request, quiet about pages that went away."""

    daemon_threads = True  # an open event stream must not keep the process alive after Ctrl-C

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A page that went away mid-answer (the frame reloaded) is normal; anything else is printed."""
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


def handler(preview: Served) -> type[BaseHTTPRequestHandler]:
    """The request handler class that answers for this preview."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "digest-preview"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: status goes through `say`
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            if (self.headers.get("Host") or "").strip().lower() not in preview.hosts:
                # A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding) sends its
                # own name here: answering it would hand that site the digest.
                self._send(421, b"misdirected request: not this preview's address\n", "text/plain")
                return
            parts = urlsplit(self.path)
            state = preview.state
            if parts.path in ("/", "/preview"):
                self._send(200, _shell(), "text/html; charset=utf-8")
            elif parts.path == "/status":
                self._send(200, json.dumps(state.status()).encode(), "application/json")
            elif parts.path == "/events":
                self._events(state)
            elif (name := parts.path.removeprefix("/")) in state.names():
                self._digest(state, name, parse_qs(parts.query).get("scheme", [""])[0])
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _digest(self, state: BuildState, name: str, scheme: str) -> None:
            data = state.files.get(name)  # none while the build is broken
            if data is None:
                self._send(500, error_page(state.error).encode(), "text/html; charset=utf-8")
            elif name.endswith(".txt"):
                self._send(200, data, "text/plain; charset=utf-8")
            else:
                self._send(200, force_scheme(data.decode(), scheme).encode(), "text/html; charset=utf-8")

        def _events(self, state: BuildState) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(f"retry: 1000\ndata: {json.dumps(state.status())}\n\n".encode())
                self.wfile.flush()
                seen = state.generation
                while not preview.stopping:
                    state = preview.wait_for_change(seen, HEARTBEAT_SECONDS)
                    if preview.stopping:
                        break
                    if state.generation != seen:
                        seen = state.generation
                        self.wfile.write(f"data: {json.dumps(state.status())}\n\n".encode())
                    else:
                        self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away

    return Handler


@functools.cache
def _shell() -> bytes:
    """The preview page (desktop/mobile, light/dark, email/web/text, language): package data, read once."""
    return (resources.files("digest") / "preview.html").read_bytes()

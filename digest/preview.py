"""A live preview: build into a private folder, serve it on 127.0.0.1, rebuild when a file changes.

What is watched: every file under the items, templates and locale folders, and the config file (polled by
their stat signature: mtime, size, inode, several times a second; no extra dependency). A change rebuilds the
digest; the page learns of it over server-sent events (/events) and reloads its frame. A failed build is
shown in the page (and /digest.html answers 500 with the error) until a later build succeeds; the server
keeps running. The preview never writes to out/.

Only requests whose Host header names the preview itself (127.0.0.1:PORT or localhost:PORT) are answered;
any other gets 421, so a web page elsewhere cannot reach the preview through a DNS name it rebinds to
127.0.0.1. The private build folder is removed on close(), Ctrl-C, SIGTERM and SIGHUP, and is not created
when the port cannot be had.

Routes: /  the preview page (desktop/mobile width, light/dark, email/web/text);  /digest.html  the email
(?scheme=dark|light forces the colour scheme);  /index.html  the web version;  /digest.txt  the text part;
/status  JSON;  /events  server-sent events, one per build.
"""

from __future__ import annotations

import functools
import html as htmllib
import json
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from digest.config import Config
from digest.errors import DigestError, EmptyWindow
from digest.window import Window

POLL_SECONDS = 0.3
HEARTBEAT_SECONDS = 10.0


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while serving in front: a BaseException, so no build's `except` keeps it."""


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values the preview answers: its own address and port, as a browser on this machine
    writes them (lower case; a browser leaves out the port when it is 80)."""
    names = {host.lower(), "127.0.0.1", "localhost"}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts)


@dataclass(frozen=True)
class BuildState:
    """The outcome of the latest build: the served files, or the error."""

    generation: int
    ok: bool
    error: str
    label: str
    item_count: int
    files: dict[str, bytes]

    def status(self) -> dict[str, Any]:
        """What /status and /events report."""
        return {
            "generation": self.generation,
            "ok": self.ok,
            "error": self.error,
            "window": self.label,
            "items": self.item_count,
        }


class Preview:
    """The preview server and its watcher. start() in the background or serve_forever() in front."""

    def __init__(
        self,
        *,
        load: Callable[[], Config],
        window: Callable[[Config], Window],
        now: Callable[[], datetime],
        host: str = "127.0.0.1",
        port: int = 0,
        say: Callable[[str], None] = lambda _m: None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._load = load
        self._window = window
        self._now = now
        self._say = say
        self._poll = poll_seconds
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._state = BuildState(0, False, "not built yet", "", 0, {})
        self._watched: list[Path] = []
        self._seen: tuple[tuple[str, int, int, int, int], ...] = ()
        self._threads: list[threading.Thread] = []
        self._serving = False
        # The port first: when it cannot be had (OSError, e.g. in use), no folder has been made to leak.
        self.server = _Server((host, port), _handler(self))
        try:
            self._out = Path(tempfile.mkdtemp(prefix="digest-preview-"))
        except BaseException:
            self.server.server_close()
            raise
        self.hosts = allowed_hosts(host, self.server.server_address[1])

    @property
    def url(self) -> str:
        """The address to open, e.g. http://127.0.0.1:41234/."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def folder(self) -> Path:
        """The private folder the preview builds into (removed on close)."""
        return self._out

    @property
    def state(self) -> BuildState:
        """The latest build's outcome."""
        with self._changed:
            return self._state

    # ---- building and watching ----

    def rebuild(self) -> BuildState:
        """Build once; a failure becomes the served error, never an exception."""
        from digest.build import build

        # Taken before loading anything: a file saved while the build runs makes the next poll build again.
        self._seen = self._signature()
        try:
            config = self._load()  # once per build; if it fails, what was watched stays watched
            watched = [
                p
                for p in (
                    config.paths.config_file,
                    config.paths.items,
                    config.paths.templates,
                    config.paths.locale,
                )
                if p is not None
            ]
            with self._changed:
                moved, self._watched = watched != self._watched, watched
            if moved:  # the first build, or the config names other folders: sign those as they are now
                self._seen = self._signature()
            win = self._window(config)
            result = build(replace(config, paths=replace(config.paths, out=self._out)), win, now=self._now())
            files = {
                name: (result.folder / name).read_bytes()
                for name in ("digest.html", "index.html", "digest.txt")
                if (result.folder / name).is_file()
            }
            outcome = (True, "", win.label, len(result.digest.items), files)
            self._say(f"built {win.label}: {len(result.digest.items)} items ({self.url})")
        except EmptyWindow as err:
            outcome = (False, f"Nothing to show: {err}", "", 0, {})
            self._say(outcome[1])
        except DigestError as err:
            outcome = (False, str(err), "", 0, {})
            self._say(f"Error: {err}")
        except Exception as err:  # the server must survive anything a build does
            outcome = (False, f"unexpected error: {type(err).__name__}: {err}", "", 0, {})
            self._say(traceback.format_exc())
        with self._changed:
            ok, error, label, count, files = outcome
            self._state = BuildState(self._state.generation + 1, ok, error, label, count, files)
            self._changed.notify_all()
            return self._state

    def _signature(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """The stat signature of every watched file: any edit, addition or removal changes it (ctime too:
        a save of the same size within one tick of the clock keeps the mtime, never the ctime)."""
        with self._changed:
            roots = list(self._watched)
        sig: list[tuple[str, int, int, int, int]] = []
        for root in roots:
            candidates = [root] if not root.is_dir() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in candidates:
                try:
                    st = path.stat()
                except OSError:
                    continue
                sig.append((str(path), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        return tuple(sig)

    def changed(self) -> bool:
        """True when a watched file was added, edited or removed since the latest build began."""
        return self._signature() != self._seen

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            if self.changed():
                self.rebuild()

    # ---- running ----

    def start(self) -> None:
        """Build once, then serve and watch in background threads."""
        self.rebuild()
        self._serving = True
        for target in (self.server.serve_forever, self._watch):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def serve_forever(self) -> None:
        """Build, watch and serve until Ctrl-C (KeyboardInterrupt), SIGTERM or SIGHUP (return) or close()."""
        try:
            with _terminate_on_signals():
                try:
                    self.rebuild()
                    watcher = threading.Thread(target=self._watch, daemon=True)
                    watcher.start()
                    self._threads.append(watcher)
                    self._serving = True
                    self.server.serve_forever()
                finally:
                    self.close()  # whatever stops us, the private folder goes
        except Terminated:
            pass

    def close(self) -> None:
        """Stop serving and watching; remove the private build folder."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._serving:  # shutdown() waits for serve_forever to return: only call it if it ran
            self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        shutil.rmtree(self._out, ignore_errors=True)

    def wait_for_change(self, generation: int, timeout: float) -> BuildState:
        """Block until a build newer than `generation` (or timeout, or close); return the latest state."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._state.generation != generation or self._stop.is_set(), timeout
            )
            return self._state

    @property
    def stopping(self) -> bool:
        """True once close() was called."""
        return self._stop.is_set()


@contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into Terminated while serving in front (the main thread only can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:  # once: a second signal must not interrupt the clean-up the first one started
            raised = True
            raise Terminated

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # under nohup, SIGHUP stays ignored
            previous[signum] = signal.signal(signum, terminate)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an open event stream must not keep the process alive after Ctrl-C

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A page that went away mid-answer (the frame reloaded) is normal; anything else is printed."""
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


def _handler(preview: Preview) -> type[BaseHTTPRequestHandler]:
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
            query = parse_qs(parts.query)
            state = preview.state
            if parts.path in ("/", "/preview"):
                self._send(200, _shell(), "text/html; charset=utf-8")
            elif parts.path in ("/digest.html", "/index.html", "/digest.txt"):
                name = parts.path.lstrip("/")
                if not state.ok or name not in state.files:
                    self._send(500, error_page(state.error).encode(), "text/html; charset=utf-8")
                elif name.endswith(".txt"):
                    self._send(200, state.files[name], "text/plain; charset=utf-8")
                else:
                    scheme = query.get("scheme", [""])[0]
                    body = force_scheme(state.files[name].decode(), scheme).encode()
                    self._send(200, body, "text/html; charset=utf-8")
            elif parts.path == "/status":
                self._send(200, json.dumps(state.status()).encode(), "application/json")
            elif parts.path == "/events":
                self._events(state)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

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
    """The preview page (desktop/mobile, light/dark, email/web/text): package data, read once."""
    return (resources.files("digest") / "preview.html").read_bytes()

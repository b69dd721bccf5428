"""A live preview: build into a private folder, serve it on 127.0.0.1, rebuild when a file changes.

What is watched: every file under the items and templates folders, and the config file (polled by their
stat signature: mtime, size, inode, several times a second; no extra dependency). A change rebuilds the
digest; the page learns of it over server-sent events (/events) and reloads its frame. A failed build is
shown in the page (and /digest.html answers 500 with the error) until a later build succeeds; the server
keeps running. The preview never writes to out/.

Routes: /  the preview page (desktop/mobile width, light/dark, email/web/text);  /digest.html  the email
(?scheme=dark|light forces the colour scheme);  /index.html  the web version;  /digest.txt  the text part;
/status  JSON;  /events  server-sent events, one per build.
"""

from __future__ import annotations

import html as htmllib
import json
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from digest.config import Config
from digest.errors import DigestError, EmptyWindow
from digest.window import Window

POLL_SECONDS = 0.3
HEARTBEAT_SECONDS = 10.0


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
        self._out = Path(tempfile.mkdtemp(prefix="digest-preview-"))
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._state = BuildState(0, False, "not built yet", "", 0, {})
        self._watched: list[Path] = []
        self._seen: tuple[tuple[str, int, int, int], ...] = ()
        self._threads: list[threading.Thread] = []
        self._serving = False
        self.server = _Server((host, port), _handler(self))

    @property
    def url(self) -> str:
        """The address to open, e.g. http://127.0.0.1:41234/."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

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
                for p in (config.paths.config_file, config.paths.items, config.paths.templates)
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

    def _signature(self) -> tuple[tuple[str, int, int, int], ...]:
        """The stat signature of every watched file: any edit, addition or removal changes it."""
        with self._changed:
            roots = list(self._watched)
        sig: list[tuple[str, int, int, int]] = []
        for root in roots:
            candidates = [root] if not root.is_dir() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in candidates:
                try:
                    st = path.stat()
                except OSError:
                    continue
                sig.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(sig)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            if self._signature() != self._seen:
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
        """Build, watch in the background and serve until Ctrl-C (KeyboardInterrupt) or close()."""
        self.rebuild()
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        self._threads.append(watcher)
        self._serving = True
        try:
            self.server.serve_forever()
        finally:
            self.close()

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
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            state = preview.state
            if parts.path in ("/", "/preview"):
                self._send(200, SHELL.encode(), "text/html; charset=utf-8")
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


SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>digest preview</title>
<style>
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #d9dee4; color: #1f2933; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 12px;
           background: #1f2933; color: #fff; position: sticky; top: 0; }
  fieldset { border: 0; margin: 0; padding: 0; display: flex; gap: 2px; }
  button { font: inherit; border: 1px solid #52606d; background: #323f4b; color: #fff; padding: 4px 10px;
           border-radius: 4px; cursor: pointer; }
  button[aria-pressed="true"] { background: #0b6e4f; border-color: #0b6e4f; }
  #status { margin-left: auto; }
  #status.failed { color: #ffb4ab; font-weight: bold; }
  main { display: flex; justify-content: center; padding: 16px; }
  iframe { border: 0; background: #fff; height: calc(100vh - 90px); box-shadow: 0 2px 8px rgba(0,0,0,.2); }
</style>
</head>
<body>
<header>
  <strong>digest preview</strong>
  <fieldset aria-label="Width">
    <button data-key="width" data-value="640">Desktop 640</button>
    <button data-key="width" data-value="375">Mobile 375</button>
  </fieldset>
  <fieldset aria-label="Colour scheme">
    <button data-key="scheme" data-value="light">Light</button>
    <button data-key="scheme" data-value="dark">Dark</button>
  </fieldset>
  <fieldset aria-label="Version">
    <button data-key="view" data-value="email">Email</button>
    <button data-key="view" data-value="web">Web version</button>
    <button data-key="view" data-value="text">Text</button>
  </fieldset>
  <span id="status" role="status">connecting...</span>
</header>
<main><iframe id="frame" title="The digest"></iframe></main>
<script>
const frame = document.getElementById('frame');
const statusEl = document.getElementById('status');
const saved = JSON.parse(localStorage.getItem('digest-preview') || '{}');
const state = Object.assign({width: '640', scheme: 'light', view: 'email'}, saved);
let generation = 0;
function src() {
  const g = '&g=' + generation;
  if (state.view === 'text') return '/digest.txt?' + g;
  return (state.view === 'web' ? '/index.html' : '/digest.html') + '?scheme=' + state.scheme + g;
}
function show(keepScroll) {
  let y = 0;
  try { y = keepScroll ? frame.contentWindow.scrollY : 0; } catch (e) {}
  frame.onload = () => { try { frame.contentWindow.scrollTo(0, y); } catch (e) {} };
  frame.style.width = state.width + 'px';
  frame.src = src();
  for (const b of document.querySelectorAll('button[data-key]')) {
    b.setAttribute('aria-pressed', String(state[b.dataset.key] === b.dataset.value));
  }
  localStorage.setItem('digest-preview', JSON.stringify(state));
}
for (const b of document.querySelectorAll('button[data-key]')) {
  b.addEventListener('click', () => { state[b.dataset.key] = b.dataset.value; show(false); });
}
const events = new EventSource('/events');
events.onmessage = (e) => {
  const s = JSON.parse(e.data);
  statusEl.className = s.ok ? '' : 'failed';
  statusEl.textContent = s.ok ? s.window + ': ' + s.items + ' items (build ' + s.generation + ')'
                              : 'Build failed: ' + s.error.split('\\n')[0];
  if (s.generation !== generation) { generation = s.generation; show(true); }
};
events.onerror = () => { statusEl.className = 'failed'; statusEl.textContent = 'preview server stopped'; };
show(false);
</script>
</body>
</html>
"""

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

Every language the build makes is served: the main one's digest.html, index.html and digest.txt at the top,
each further language's under its folder (/fr/digest.html); digest/previewhttp.py has the routes.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import FrameType

from digest.config import Config
from digest.errors import DigestError, EmptyWindow
from digest.outdir import lang_folder
from digest.previewhttp import PAGES, BuildState, Language, Server, allowed_hosts, force_scheme, handler
from digest.window import Window

__all__ = ["BuildState", "Language", "Preview", "Terminated", "allowed_hosts", "force_scheme"]

POLL_SECONDS = 0.3


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while serving in front: a BaseException, so no build's `except` keeps it."""


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
        self.server = Server((host, port), handler(self))
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
        languages: tuple[Language, ...] | None = None  # None: the build failed, the last good one's stay
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
            languages = (
                Language(result.manifest.lang or config.language, ""),
                *(Language(m.lang, lang_folder(m.lang) + "/") for m in result.languages),
            )
            files = {
                lang.prefix + name: (result.folder / lang.prefix / name).read_bytes()
                for lang in languages
                for name in PAGES
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
            if languages is None:  # the page keeps its Language buttons, each showing the error
                languages = self._state.languages
            self._state = BuildState(self._state.generation + 1, ok, error, label, count, files, languages)
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

"""The preview server over HTTP on loopback: pages served, changes picked up, errors shown and recovered.

Waits are bounded (a deadline, then a failure), never timing assertions.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from conftest import NOW, REPO
from test_languages import FRENCH, french_item

from digest.config import Config, load_config
from digest.preview import Preview, Terminated, _terminate_on_signals, allowed_hosts, force_scheme
from digest.window import resolve

DEADLINE = 30.0  # seconds: generous for a loaded machine; a pass takes a fraction of it
ITEM = "2021-03-23-ilo-coop-participates-in-two-parallel-events-at-csw65.md"
TITLE = "ILO COOP participates in two parallel events at CSW65"


ENGLISH = {"code": "en", "path": "/"}


def started(workspace: Path) -> Iterator[Preview]:
    now = datetime.fromisoformat(NOW)
    server = Preview(
        load=lambda: load_config(workspace / "digest.toml", environ={}),
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
        poll_seconds=0.1,
    )
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def preview(workspace: Path) -> Iterator[Preview]:
    yield from started(workspace)


@pytest.fixture
def bilingual(workspace: Path) -> Iterator[Preview]:
    """A preview of the sample workspace with a [languages.fr] table and two French items in March 2021."""
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write(FRENCH)
    french_item(workspace)
    french_item(workspace, "fr-2.md", title="Deuxième nouvelle")
    yield from started(workspace)


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; 5xx answers are returned, not raised."""
    try:
        with urlopen(url, timeout=DEADLINE) as response:  # noqa: S310 - loopback http only
            return response.status, response.headers["Content-Type"], response.read().decode()
    except HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def status(preview: Preview) -> dict[str, Any]:
    return dict(json.loads(get(preview.url + "status")[2]))


def wait_for(what: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {DEADLINE} s waiting for: {message}")
        time.sleep(0.05)


def rebuilt_after(preview: Preview, generation: int) -> dict[str, Any]:
    wait_for(lambda: status(preview)["generation"] > generation, f"a build after #{generation}")
    return status(preview)


def test_pages_are_served(preview: Preview) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", preview.url)
    code, kind, body = get(preview.url)
    assert code == 200 and kind == "text/html; charset=utf-8"
    assert "new EventSource('/events')" in body
    for label in ("Desktop 640", "Mobile 375", "Light", "Dark", "Text", "Web version"):
        assert f">{label}</button>" in body
    code, kind, body = get(preview.url + "digest.html")
    assert code == 200 and TITLE in body and "View this digest in your browser" in body
    code, kind, body = get(preview.url + "digest.txt")
    assert code == 200 and kind == "text/plain; charset=utf-8" and TITLE in body
    code, kind, body = get(preview.url + "index.html")
    assert code == 200 and TITLE in body and "Unsubscribe" not in body
    assert status(preview) == {
        "generation": 1,
        "ok": True,
        "error": "",
        "window": "March 2021",
        "items": 10,
        "languages": [ENGLISH],
    }
    assert get(preview.url + "nothing-here")[0] == 404
    assert get(preview.url + "fr/digest.html")[0] == 404  # no French digest in this workspace


def test_light_and_dark_are_forced(preview: Preview) -> None:
    dark = get(preview.url + "digest.html?scheme=dark")[2]
    light = get(preview.url + "digest.html?scheme=light")[2]
    assert "prefers-color-scheme" not in dark and "@media all" in dark
    assert "prefers-color-scheme" not in light and "@media not all" in light
    assert (
        force_scheme("@media (prefers-color-scheme: dark) {}", "") == "@media (prefers-color-scheme: dark) {}"
    )


def test_an_item_change_is_picked_up(preview: Preview, workspace: Path) -> None:
    path = workspace / "items" / ITEM
    path.write_text(path.read_text().replace(TITLE, "CSW65 - two events, one message"))
    after = rebuilt_after(preview, 1)
    assert after["ok"] is True
    body = get(preview.url + "digest.html")[2]
    assert "CSW65 - two events, one message" in body and TITLE not in body
    assert "CSW65 - two events, one message" in get(preview.url + "digest.txt")[2]


def test_a_new_item_and_a_config_change_are_picked_up(preview: Preview, workspace: Path) -> None:
    (workspace / "items" / "2021-03-31-late.md").write_text(
        "---\ntitle: A late item\ndate: 2021-03-31\ncategory: News\nsummary: Just in time.\n---\n"
    )
    assert rebuilt_after(preview, 1)["items"] == 11
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text().replace('title = "Co-operative News Digest"', 'title = "Coop Weekly"')
    )
    rebuilt_after(preview, 2)
    assert "Coop Weekly" in get(preview.url + "digest.html")[2]


def test_a_broken_template_is_shown_then_recovered(preview: Preview, workspace: Path) -> None:
    template = workspace / "templates" / "digest.mjml.j2"
    good = template.read_text()
    template.write_text(good.replace("{% for section in sections %}", "{% for section in %}", 1))
    after = rebuilt_after(preview, 1)
    assert after["ok"] is False and "digest.mjml.j2:" in after["error"]
    code, kind, body = get(preview.url + "digest.html")
    assert code == 500 and kind == "text/html; charset=utf-8"
    assert "The digest did not build" in body and "templates/digest.mjml.j2:" in body
    assert get(preview.url + "digest.txt")[0] == 500
    assert get(preview.url)[0] == 200  # the preview page itself stays up
    template.write_text(good)
    after = rebuilt_after(preview, 2)
    assert after["ok"] is True
    code, _kind, body = get(preview.url + "digest.html")
    assert code == 200 and TITLE in body


def test_a_broken_item_is_shown_with_its_file_and_line(preview: Preview, workspace: Path) -> None:
    path = workspace / "items" / ITEM
    path.write_text(path.read_text().replace("category: News", "catgory: News"))
    after = rebuilt_after(preview, 1)
    assert after["ok"] is False
    assert f"items/{ITEM}:4: unknown field 'catgory'" in after["error"]
    assert "unknown field &#x27;catgory&#x27;" in get(preview.url + "digest.html")[2]


def test_each_build_loads_the_config_once(workspace: Path) -> None:
    now = datetime.fromisoformat(NOW)
    loads: list[Config] = []

    def load() -> Config:
        loads.append(load_config(workspace / "digest.toml", environ={}))
        return loads[-1]

    server = Preview(
        load=load,
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
    )
    try:
        assert server.rebuild().ok and len(loads) == 1
        assert server.rebuild().ok and len(loads) == 2
    finally:
        server.close()


def test_a_build_signs_what_it_watches(workspace: Path) -> None:
    """The first build signs the files it then watches: no second build until a file changes."""
    now = datetime.fromisoformat(NOW)
    server = Preview(
        load=lambda: load_config(workspace / "digest.toml", environ={}),
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
    )
    try:
        assert server.rebuild().ok
        assert not server.changed()
        (workspace / "items" / "2021-03-31-late.md").write_text("---\ntitle: Late\n---\n")
        assert server.changed()
        server.rebuild()
        assert not server.changed()
        # Saved in place with the same size, its mtime set back: only the ctime tells.
        late = workspace / "items" / "2021-03-31-late.md"
        st = late.stat()
        time.sleep(0.05)
        late.write_text("---\ntitle: Lata\n---\n")
        os.utime(late, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert server.changed()
        server.rebuild()
        late.unlink()
        assert server.changed()
    finally:
        server.close()


def test_a_broken_config_is_shown_and_still_watched(preview: Preview, workspace: Path) -> None:
    config = workspace / "digest.toml"
    good = config.read_text()
    config.write_text(good.replace('title = "Co-operative News Digest"', "title = "))
    after = rebuilt_after(preview, 1)
    assert after["ok"] is False and "digest.toml" in after["error"]
    config.write_text(good.replace('title = "Co-operative News Digest"', 'title = "Coop Weekly"'))
    assert rebuilt_after(preview, 2)["ok"] is True
    assert "Coop Weekly" in get(preview.url + "digest.html")[2]


def test_events_announce_each_build(preview: Preview, workspace: Path) -> None:
    host, port = preview.url.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=DEADLINE)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"

    def next_event() -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE  # pings alone must not keep the test waiting forever
        while time.monotonic() < deadline:
            line = response.readline().decode()
            assert line, "the event stream ended"
            if line.startswith("data: "):
                return dict(json.loads(line[6:]))
        pytest.fail(f"no event in {DEADLINE} s")

    assert next_event()["generation"] == 1
    path = workspace / "items" / ITEM
    path.write_text(path.read_text() + "\nA body, added.\n")
    event = next_event()
    assert event["generation"] == 2 and event["ok"] is True
    conn.close()


def _default_signals() -> None:
    # In the child, before exec: Python turns SIGINT into KeyboardInterrupt only when it starts with the
    # default disposition, and the preview leaves an ignored SIGHUP ignored; a suite started under nohup
    # or as a background job has them ignored. The tests set what they rely on.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def spawn(workspace: Path, tmp: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m digest --now NOW preview ARGS` in its own process, its temporary folders under tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = str(REPO)
    env["TMPDIR"] = str(tmp)
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--now", NOW, "preview", *args],
        cwd=workspace,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,  # one signal call in the child: nothing there takes a lock
    )


def serving(proc: subprocess.Popen[str]) -> str:
    """Wait for the preview's first successful build; its address."""
    assert proc.stderr is not None
    first = proc.stderr.readline()  # printed before the first build
    m = re.match(r"Preview on (http://127\.0\.0\.1:\d+/)  \(Ctrl-C to stop\)$", first.strip())
    assert m, first
    url = m[1]
    wait_for(
        lambda: get(url + "status")[0] == 200 and json.loads(get(url + "status")[2])["ok"], "first build"
    )
    return url


def stop(proc: subprocess.Popen[str], signum: int) -> str:
    """Send a signal and wait for the process to end; what it wrote to stderr after its first line."""
    try:
        proc.send_signal(signum)
        _out, rest = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rest


def preview_folders(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("digest-preview-"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_stops_the_command_cleanly(workspace: Path, tmp_path: Path, signum: signal.Signals) -> None:
    """`digest preview` in its own process: it prints its address, serves, and on Ctrl-C (SIGINT), SIGTERM
    or SIGHUP exits 0 having removed its private build folder. Whatever SIGINT disposition the suite was
    started with (nohup, a background job), the child gets the default one, as from a terminal."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = spawn(workspace, tmp, "--month", "2021-03")
    url = serving(proc)
    assert TITLE in get(url + "digest.html")[2]
    [folder] = preview_folders(tmp)
    assert (tmp / folder / "2021-03" / "digest.html").is_file()  # the build the preview serves, in there
    rest = stop(proc, signum)
    assert proc.returncode == 0, rest
    assert "built March 2021: 10 items (http://127.0.0.1:" in rest
    assert rest.rstrip().endswith("Stopped.")
    assert "Traceback" not in rest
    assert preview_folders(tmp) == []


def test_a_bad_option_is_an_error_before_serving(workspace: Path, tmp_path: Path) -> None:
    """A bad --month is no file the preview could watch for a fix: exit 1 at once, nothing served."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = spawn(workspace, tmp, "--month", "2021-13")
    try:
        _out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            pytest.fail("the preview started serving with a bad --month")
    assert proc.returncode == 1
    assert err == "Error: --month '2021-13': use YYYY-MM, e.g. 2021-03\n"
    assert preview_folders(tmp) == []


def test_a_busy_port_is_a_clean_error_and_leaves_no_folder(
    workspace: Path, run: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("preview", "--month", "2021-03", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert list(tmp.iterdir()) == []


def test_close_removes_the_folder(workspace: Path) -> None:
    now = datetime.fromisoformat(NOW)
    server = Preview(
        load=lambda: load_config(workspace / "digest.toml", environ={}),
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
    )
    assert server.folder.is_dir()
    server.close()
    assert not server.folder.exists()


def test_sigterm_during_the_first_build_stops_and_cleans_up(workspace: Path) -> None:
    """The signal arrives while the build runs (in this, the main thread): the build does not swallow it."""
    import threading

    now = datetime.fromisoformat(NOW)

    def load() -> Config:
        signal.raise_signal(signal.SIGTERM)
        return load_config(workspace / "digest.toml", environ={})

    server = Preview(
        load=load,
        window=lambda c: resolve(tz=c.tz, locale=c.language, now=now, month_="2021-03"),
        now=lambda: now,
    )
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # whatever the suite was started with
    watchdog = threading.Timer(DEADLINE, server.close)  # if the signal were swallowed, serving goes on
    watchdog.start()
    try:
        server.serve_forever()
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGTERM, term)
    assert server.state.generation == 0  # cut short, not recorded as a failed build
    assert not server.folder.exists()


def raw_get(preview: Preview, path: str, host: str | None) -> tuple[int, bytes]:
    """A GET with this Host header (None: none at all), as a page of another site would send it."""
    port = int(preview.url.rstrip("/").rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_only_its_own_host_is_answered(preview: Preview) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 must get nothing."""
    port = int(preview.url.rstrip("/").rsplit(":", 1)[1])
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}"):
        code, body = raw_get(preview, "/digest.html", host)
        assert code == 200 and TITLE.encode() in body, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1", "", None):
        for path in ("/digest.html", "/status", "/", "/events", "/nothing-here"):
            code, body = raw_get(preview, path, host)
            assert code == 421, (host, path)
            assert TITLE.encode() not in body and b"generation" not in body


def test_allowed_hosts() -> None:
    assert allowed_hosts("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000"}
    assert allowed_hosts("LOCALHOST", 8000) == {"127.0.0.1:8000", "localhost:8000"}
    assert allowed_hosts("127.0.0.2", 8000) == {"127.0.0.1:8000", "localhost:8000", "127.0.0.2:8000"}
    # A browser leaves out the default port.
    assert allowed_hosts("127.0.0.1", 80) == {"127.0.0.1:80", "localhost:80", "127.0.0.1", "localhost"}


def test_terminate_on_signals_raises_once_and_restores() -> None:
    term = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # whatever the suite was started with
    hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    try:
        with pytest.raises(Terminated), _terminate_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # left ignored
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                signal.raise_signal(signal.SIGTERM)  # a second one does not cut the clean-up short
                cleaned = True
        assert cleaned
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGHUP, hup)
        signal.signal(signal.SIGTERM, term)


def test_terminate_on_signals_outside_the_main_thread() -> None:
    """Only the main thread can set handlers: elsewhere the preview serves without them, and does not fail."""
    import threading

    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        with _terminate_on_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


@pytest.mark.browser
def test_the_page_in_a_real_browser(preview: Preview, workspace: Path) -> None:
    """The buttons switch width and scheme, and a broken build shows in the page, then goes away."""
    from test_shots import require_browser

    from digest.shots import open_browser

    require_browser()
    with open_browser() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(preview.url)
        page.get_by_role("button", name="Mobile 375").click()
        page.get_by_role("button", name="Dark").click()
        frame = page.frame_locator("#frame")
        frame.locator("h1").wait_for()
        assert page.eval_on_selector("#frame", "f => f.getBoundingClientRect().width") == 375
        # One language: no Language buttons.
        assert page.eval_on_selector("#languages", "g => g.hidden && g.offsetHeight === 0")
        assert page.get_by_role("group", name="Language").count() == 0
        background = page.eval_on_selector(
            "#frame",
            "f => getComputedStyle(f.contentDocument.querySelector('.dm-card')).backgroundColor",
        )
        assert background == "rgb(21, 25, 30)"  # the template's dark card, #15191e
        template = workspace / "templates" / "digest.mjml.j2"
        good = template.read_text()
        template.write_text(good.replace("{% for section in sections %}", "{% for section in %}", 1))
        page.wait_for_function(
            "document.getElementById('status').className === 'failed'", timeout=DEADLINE * 1000
        )
        assert "Build failed: templates/digest.mjml.j2:" in (page.text_content("#status") or "")
        frame.locator("#error").wait_for()
        template.write_text(good)
        page.wait_for_function("document.getElementById('status').className === ''", timeout=DEADLINE * 1000)
        frame.locator("h1").wait_for()
        page.get_by_role("button", name="Text").click()
        frame.locator("pre").wait_for()  # Chromium shows text/plain in a <pre>
        assert TITLE in (frame.locator("pre").text_content() or "")


# ---- every language the build makes ----

FRENCH_STATUS = [ENGLISH, {"code": "fr", "path": "/fr/"}]


def test_every_language_is_served(bilingual: Preview) -> None:
    assert status(bilingual)["languages"] == FRENCH_STATUS
    code, kind, body = get(bilingual.url + "fr/digest.html")
    assert code == 200 and kind == "text/html; charset=utf-8"
    assert '<html lang="fr"' in body and "Deuxième nouvelle" in body and "Dans ce numéro" in body
    assert TITLE not in body
    code, kind, body = get(bilingual.url + "fr/digest.txt")
    assert code == 200 and kind == "text/plain; charset=utf-8"
    assert body.startswith("Actualités coopératives : mars 2021\n") and "Deuxième nouvelle" in body
    code, kind, body = get(bilingual.url + "fr/index.html")
    assert code == 200 and "Deuxième nouvelle" in body and "Publié le" in body
    assert "prefers-color-scheme" not in get(bilingual.url + "fr/digest.html?scheme=dark")[2]
    # The main language stays where it was, in English.
    code, _kind, body = get(bilingual.url + "digest.html")
    assert code == 200 and '<html lang="en"' in body and TITLE in body and "Deuxième nouvelle" not in body
    assert TITLE in get(bilingual.url + "digest.txt")[2] and TITLE in get(bilingual.url + "index.html")[2]


def test_only_the_known_names_are_served(bilingual: Preview) -> None:
    """Only a known language's three files: no other file of the build folder, no path walked out of it."""
    port = int(bilingual.url.rstrip("/").rsplit(":", 1)[1])
    host = f"127.0.0.1:{port}"
    assert raw_get(bilingual, "/fr/digest.html", host)[0] == 200
    for path in (
        "/de/digest.html",
        "/fr/../digest.html",
        "/fr/../fr/digest.html",
        "/fr/./digest.html",
        "/fr//digest.html",
        "/fr/fr/digest.html",
        "/FR/digest.html",
        "/fr%2Fdigest.html",
        "/fr/digest.eml",
        "/fr/digest.mjml",
        "/fr/manifest.json",
        "/fr/journal.sqlite",
        "/manifest.json",
        "/digest.eml",
        "/fr/",
        "/fr",
        "/fr/status",
        "/en/digest.html",  # the main language is at the top, not under a folder
    ):
        code, body = raw_get(bilingual, path, host)
        assert code == 404, path
        assert b"Deuxi" not in body and TITLE.encode() not in body, path
    for path in ("/fr/digest.html", "/fr/digest.txt", "/fr/index.html"):  # the Host check comes first
        assert raw_get(bilingual, path, "evil.example")[0] == 421


def test_a_broken_build_shows_the_error_for_every_language(bilingual: Preview, workspace: Path) -> None:
    template = workspace / "templates" / "digest.mjml.j2"
    good = template.read_text()
    template.write_text(good.replace("{% for section in sections %}", "{% for section in %}", 1))
    after = rebuilt_after(bilingual, 1)
    assert after["ok"] is False and after["languages"] == FRENCH_STATUS  # the page keeps its buttons
    for name in ("digest.html", "fr/digest.html", "fr/index.html", "fr/digest.txt"):
        code, kind, body = get(bilingual.url + name)
        assert code == 500 and kind == "text/html; charset=utf-8", name
        assert "The digest did not build" in body and "templates/digest.mjml.j2:" in body, name
    assert get(bilingual.url + "de/digest.html")[0] == 404
    template.write_text(good)
    assert rebuilt_after(bilingual, 2)["ok"] is True
    assert "Deuxième nouvelle" in get(bilingual.url + "fr/digest.html")[2]


def test_a_first_build_that_fails_shows_the_error_for_the_main_language(workspace: Path) -> None:
    """No build has said which languages there are: the main language's files show the error, no other."""
    template = workspace / "templates" / "digest.mjml.j2"
    template.write_text(template.read_text().replace("{% for section in sections %}", "{% for section in %}"))
    for server in started(workspace):
        assert status(server)["ok"] is False and status(server)["languages"] == []
        for name in ("digest.html", "index.html", "digest.txt"):
            code, _kind, body = get(server.url + name)
            assert code == 500 and "The digest did not build" in body, name
        assert get(server.url + "fr/digest.html")[0] == 404


def drop_french(workspace: Path) -> None:
    for name in ("fr-1.md", "fr-2.md"):
        path = workspace / "items" / name
        path.write_text(path.read_text(encoding="utf-8").replace("lang: fr\n", "lang: fr\ndraft: true\n"))


def test_a_language_dropped_by_an_edit_goes_and_one_added_comes(bilingual: Preview, workspace: Path) -> None:
    drop_french(workspace)
    wait_for(lambda: status(bilingual)["languages"] == [ENGLISH], "French gone from the status")
    assert status(bilingual)["ok"] is True
    assert get(bilingual.url + "fr/digest.html")[0] == 404
    assert get(bilingual.url + "digest.html")[0] == 200
    generation = status(bilingual)["generation"]
    french_item(workspace, "fr-3.md", title="Troisième nouvelle")
    after = rebuilt_after(bilingual, generation)
    assert after["languages"] == FRENCH_STATUS
    assert "Troisième nouvelle" in get(bilingual.url + "fr/digest.html")[2]


def test_a_language_with_a_region_is_served_under_its_folder(workspace: Path) -> None:
    write = workspace / "items" / "pt.md"
    write.write_text(
        "---\ntitle: Notícia do mês\ndate: 2021-03-12\ncategory: News\nlang: pt-BR\n"
        "summary: Uma cooperativa.\n---\n",
        encoding="utf-8",
    )
    for server in started(workspace):
        assert status(server)["languages"] == [ENGLISH, {"code": "pt_BR", "path": "/pt-br/"}]
        code, kind, body = get(server.url + "pt-br/digest.txt")
        assert code == 200 and kind == "text/plain; charset=utf-8" and "Notícia do mês" in body
        assert '<html lang="pt-BR"' in get(server.url + "pt-br/digest.html")[2]
        assert get(server.url + "pt_BR/digest.html")[0] == 404


def frame_in(page: Any, lang: str) -> None:
    """Wait until the frame shows a page in this language (while it loads, it has no document element)."""
    page.wait_for_function(
        "lang => document.getElementById('frame').contentDocument?.documentElement?.lang === lang",
        arg=lang,
        timeout=DEADLINE * 1000,
    )


@pytest.mark.browser
def test_the_language_buttons_in_a_real_browser(bilingual: Preview, workspace: Path) -> None:
    """Language buttons from the status: French loads the French digest, the choice is remembered, and a
    language that goes falls back to the main one, its buttons with it."""
    from test_shots import require_browser

    from digest.shots import open_browser

    require_browser()
    wait = DEADLINE * 1000
    with open_browser() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(bilingual.url)
        group = page.get_by_role("group", name="Language")
        group.get_by_role("button", name="fr", exact=True).wait_for()
        assert group.get_by_role("button", name="en", exact=True).get_attribute("aria-pressed") == "true"
        frame = page.frame_locator("#frame")
        frame_in(page, "en")
        group.get_by_role("button", name="fr", exact=True).click()
        frame_in(page, "fr")
        assert "Deuxième nouvelle" in (frame.locator("body").text_content() or "")
        assert group.get_by_role("button", name="fr", exact=True).get_attribute("aria-pressed") == "true"
        page.get_by_role("button", name="Text").click()
        frame.locator("pre").wait_for()
        assert (frame.locator("pre").text_content() or "").startswith("Actualités coopératives")
        page.get_by_role("button", name="Email").click()
        page.reload()  # remembered: French again
        frame_in(page, "fr")
        drop_french(workspace)
        page.wait_for_function("document.getElementById('languages').hidden", timeout=wait)
        frame_in(page, "en")
        assert TITLE in (frame.locator("body").text_content() or "")
        assert page.evaluate("JSON.parse(localStorage.getItem('digest-preview')).lang") == "en"

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

from digest.config import Config, load_config
from digest.preview import Preview, force_scheme
from digest.window import resolve

DEADLINE = 30.0  # seconds: generous for a loaded machine; a pass takes a fraction of it
ITEM = "2021-03-23-ilo-coop-participates-in-two-parallel-events-at-csw65.md"
TITLE = "ILO COOP participates in two parallel events at CSW65"


@pytest.fixture
def preview(workspace: Path) -> Iterator[Preview]:
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
    assert status(preview) == {"generation": 1, "ok": True, "error": "", "window": "March 2021", "items": 10}
    assert get(preview.url + "nothing-here")[0] == 404


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
        while True:
            line = response.readline().decode()
            assert line, "the event stream ended"
            if line.startswith("data: "):
                return dict(json.loads(line[6:]))

    assert next_event()["generation"] == 1
    path = workspace / "items" / ITEM
    path.write_text(path.read_text() + "\nA body, added.\n")
    event = next_event()
    assert event["generation"] == 2 and event["ok"] is True
    conn.close()


def test_ctrl_c_stops_the_command_cleanly(workspace: Path) -> None:
    """`digest preview` in its own process: it prints its address, serves, and exits 0 on Ctrl-C (SIGINT)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--now", NOW, "preview", "--month", "2021-03"],
        cwd=workspace,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # printed before the first build
        m = re.match(r"Preview on (http://127\.0\.0\.1:\d+/)  \(Ctrl-C to stop\)$", first.strip())
        assert m, first
        url = m[1]
        wait_for(
            lambda: get(url + "status")[0] == 200 and json.loads(get(url + "status")[2])["ok"], "first build"
        )
        assert TITLE in get(url + "digest.html")[2]
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert rest.rstrip().endswith("Stopped.")
    assert "Traceback" not in rest


def test_a_busy_port_is_a_clean_error(workspace: Path, run: Callable[..., Any]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("preview", "--month", "2021-03", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")


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

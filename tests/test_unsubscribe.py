"""The unsubscribe endpoint on a real HTTP server on 127.0.0.1 (wsgiref in a thread), with real clients: urllib,
raw sockets for bytes no client library would send, and the headless Chromium for the page's button."""

from __future__ import annotations

import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import Result
from smtpserver import MONTH, Handler, Server, subscribers
from test_shots import require_browser

from digest import unsubscribe
from digest.config import Config, load_config
from digest.errors import ConfigError
from digest.message import Personaliser, personaliser
from digest.outdir import load as load_built
from digest.suppress import Entry, Suppressions, normalise, open_suppressions
from digest.tokens import unsubscribe_token

SECRET = "unsubscribe-test-secret-0123456789abcdef"  # 40 bytes
URL = "https://example.org/unsubscribe?email={email}&token={token}"
HINT = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
Run = Callable[..., Result]


def config_for(
    folder: Path, *, url: str = URL, secret: str = SECRET, title: str = "Coop <News> & Co"
) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "digest.toml").write_text(f"title = {title!r}\n", encoding="utf-8")
    env = {"DIGEST_UNSUBSCRIBE_URL": url, "DIGEST_UNSUBSCRIBE_SECRET": secret}
    return load_config(folder / "digest.toml", environ=env)


@contextmanager
def running(config: Config) -> Iterator[str]:
    """The endpoint of this config on a free port; yields http://127.0.0.1:PORT."""
    httpd = unsubscribe.server(config, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_for(tmp_path / "ws")


@pytest.fixture
def base(config: Config) -> Iterator[str]:
    with running(config) as url:
        yield url


def link(base: str, email: str, *, token: str | None = None, template: str = URL) -> str:
    """The signed link of an address as `digest send` writes it, pointed at the local server."""
    token = unsubscribe_token(SECRET, email) if token is None else token
    return template.format(email=quote(email, safe=""), token=token).replace("https://example.org", base)


def request(
    url: str, data: bytes | None = None, *, method: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback http only
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def one_click(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """What Gmail does when the reader presses its Unsubscribe button (RFC 8058 3.2)."""
    form = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "GoogleOneClick/1.0",
        **headers,
    }
    return request(url, b"List-Unsubscribe=One-Click", headers=form)


def entries(config: Config) -> list[Entry]:
    with Suppressions(config.paths.suppressions) as store:
        return store.entries()


def raw_http(base: str, data: bytes) -> bytes:
    """Send bytes as they are (no client library would send these) and return the whole answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# ---- one-click POST ----


def test_a_one_click_post_unsubscribes_at_once_with_its_evidence(config: Config, base: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    status, body, headers = one_click(link(base, "Ann.Lee@Example.org"))
    assert status == 200
    assert "You are unsubscribed" in body and "<form" not in body and "<button" not in body
    assert headers["Cache-Control"] == "no-store"
    (entry,) = entries(config)
    assert entry.address == normalise("Ann.Lee@Example.org")  # as the subscriber list keys it
    assert (entry.reason, entry.source) == ("unsubscribed", "one-click")
    assert "user agent: GoogleOneClick/1.0" in entry.evidence
    stamp = re.search(r"POST at (\S+);", entry.evidence)
    assert stamp is not None and datetime.fromisoformat(stamp[1]) >= before
    assert entry.at >= before


def test_a_multipart_one_click_post_unsubscribes_too(config: Config, base: str) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--XyZ--\r\n'
    status, _, _ = request(
        link(base, "bo@example.org"), body, headers={"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert status == 200
    assert [e.address for e in entries(config)] == ["bo@example.org"]


def test_the_content_type_is_read_case_insensitively(config: Config, base: str) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n'
    status, _, _ = request(
        link(base, "bo@example.org"), body, headers={"Content-Type": "Multipart/Form-Data;boundary=b"}
    )
    assert status == 200
    assert [e.address for e in entries(config)] == ["bo@example.org"]


def test_a_utf8_user_agent_is_kept_as_sent(config: Config, base: str) -> None:
    path = link(base, "ann@example.org").removeprefix(base)
    answer = raw_http(
        base,
        f"POST {path} HTTP/1.0\r\nUser-Agent: Clïent/1 ✉\r\nContent-Length: 26\r\n\r\n".encode()
        + b"List-Unsubscribe=One-Click",
    )
    assert answer.startswith(b"HTTP/1.0 200 ")
    (entry,) = entries(config)
    assert entry.evidence.endswith("user agent: Clïent/1 ✉")


def test_a_second_one_click_post_keeps_the_first_entry(config: Config, base: str) -> None:
    assert one_click(link(base, "ann@example.org"))[0] == 200
    first = entries(config)
    assert one_click(link(base, "ann@example.org"), **{"User-Agent": "Other"})[0] == 200
    assert entries(config) == first


@pytest.mark.parametrize(
    "body",
    [b"", b"List-Unsubscribe=Two-Clicks", b"List-Unsubscribe=one-click", b"unsubscribe=yes", b"\xff\xfe\x00"],
)
def test_a_post_without_the_one_click_pair_does_not_unsubscribe(
    config: Config, base: str, body: bytes
) -> None:
    status, page, _ = request(
        link(base, "ann@example.org"), body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 400
    assert "Not an unsubscribe request" in page
    assert entries(config) == []


def test_a_huge_body_is_refused_unread(config: Config, base: str) -> None:
    path = link(base, "ann@example.org").removeprefix(base)
    head = (
        f"POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {unsubscribe.MAX_BODY + 1}\r\n\r\n"
    ).encode()
    answer = raw_http(base, head + b"List-Unsubscribe=One-Click")  # the rest is never sent, never awaited
    assert answer.startswith(b"HTTP/1.0 413 ")
    assert entries(config) == []


def test_a_body_just_under_the_cap_is_read(config: Config, base: str) -> None:
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * (unsubscribe.MAX_BODY - 31)
    assert len(body) == unsubscribe.MAX_BODY
    status, _, _ = request(
        link(base, "ann@example.org"), body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    assert len(entries(config)) == 1


def test_a_bad_content_length_is_answered_plainly(config: Config, base: str) -> None:
    path = link(base, "ann@example.org").removeprefix(base)
    answer = raw_http(base, f"POST {path} HTTP/1.0\r\nContent-Length: lots\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert b"Traceback" not in answer
    assert entries(config) == []


# ---- GET: a page with one button, never an unsubscribe ----


def test_a_get_shows_the_page_and_unsubscribes_no_one(config: Config, base: str) -> None:
    email = "o'brien+news@example.org"
    for _ in range(3):  # a mail scanner prefetching the link, more than once
        status, page, headers = request(link(base, email))
        assert status == 200
    assert entries(config) == []
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert page.count("<form") == 1 and page.count("<button") == 1
    assert re.search(r'<form method="post">', page)  # to this same URL: no action attribute
    assert "o&#x27;brien+news@example.org" in page and "o'brien" not in page
    assert "Coop &lt;News&gt; &amp; Co" in page and "<News>" not in page


def test_a_head_request_gets_no_body_and_unsubscribes_no_one(config: Config, base: str) -> None:
    status, body, headers = request(link(base, "ann@example.org"), method="HEAD")
    assert (status, body) == (200, "")
    assert int(headers["Content-Length"]) > 0
    assert entries(config) == []


def test_a_head_answer_really_has_no_body(config: Config, base: str) -> None:
    path = link(base, "ann@example.org").removeprefix(base)
    answer = raw_http(base, f"HEAD {path} HTTP/1.0\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") and body == b""


def test_a_get_after_unsubscribing_says_so_without_a_button(config: Config, base: str) -> None:
    assert one_click(link(base, "ann@example.org"))[0] == 200
    status, page, _ = request(link(base, "ann@example.org"))
    assert status == 200
    assert "You are unsubscribed" in page and "<button" not in page


def test_other_methods_are_not_allowed(config: Config, base: str) -> None:
    for method in ("PUT", "DELETE"):
        status, _, headers = request(
            link(base, "ann@example.org"), b"List-Unsubscribe=One-Click", method=method
        )
        assert status == 405
        assert headers["Allow"] == "GET, HEAD, POST"
    assert entries(config) == []


# ---- tokens ----


@pytest.mark.parametrize(
    "query",
    [
        "",
        "email=ann%40example.org",
        "token=" + "0" * 32,
        "email=ann%40example.org&token=",
        "email=ann%40example.org&token=" + "0" * 32,
        "email=bob%40example.org&token={ann}",  # another address's token
        "email=ann%40example.org&token={ann}x",
        "email=ann%40example.org&token={ann_upper}",
        "email=ann%40example.org&token=%C3%A9%F0%9F%92%A5",
        "email=%FF%FE&token=%FF",
        "email=ann%40example.org&email=bob%40example.org&token={bob}",  # the first email counts
    ],
)
def test_a_bad_or_missing_token_gets_400_and_a_plain_page(config: Config, base: str, query: str) -> None:
    ann = unsubscribe_token(SECRET, "ann@example.org")
    query = query.format(ann=ann, ann_upper=ann.upper(), bob=unsubscribe_token(SECRET, "bob@example.org"))
    for data in (None, b"List-Unsubscribe=One-Click"):
        status, page, _ = request(f"{base}/unsubscribe?{query}", data)
        assert status == 400
        assert "This unsubscribe link is not valid" in page and "Traceback" not in page
    assert entries(config) == []


def test_the_token_is_checked_against_the_address_case_insensitively(config: Config, base: str) -> None:
    url = f"{base}/unsubscribe?email=ANN%40EXAMPLE.ORG&token={unsubscribe_token(SECRET, 'ann@example.org')}"
    assert one_click(url)[0] == 200


def test_a_token_signed_with_another_secret_is_refused(config: Config, base: str) -> None:
    other = unsubscribe_token("another-secret-" + "x" * 32, "ann@example.org")
    assert one_click(link(base, "ann@example.org", token=other))[0] == 400
    assert entries(config) == []


@pytest.mark.parametrize(
    "data",
    [
        b"GET /unsubscribe?email=\xff\xfe\x00&token=\xc3\xa9 HTTP/1.0\r\n\r\n",
        b"POST /unsubscribe?email=ann@example.org&token=\xe2\x82\xac HTTP/1.0\r\nContent-Length: 26\r\n\r\n"
        b"List-Unsubscribe=One-Click",
        b"GET /\xf0\x9f\x92\xa5/%ZZ?%%%&&&==&token HTTP/1.0\r\nUser-Agent: \xff\x00\r\n\r\n",
    ],
)
def test_raw_non_ascii_bytes_get_a_plain_400(config: Config, base: str, data: bytes) -> None:
    answer = raw_http(base, data)
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
    assert b"not valid" in answer and b"Traceback" not in answer
    assert entries(config) == []


def test_the_app_called_directly_survives_odd_environments(config: Config) -> None:
    """What a WSGI server might hand over: bytes, missing keys, an input that ends early."""
    import io

    app = unsubscribe.make_app(config)
    token = unsubscribe_token(SECRET, "ann@example.org")
    seen: list[str] = []

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append(status)

    environments: list[dict[str, Any]] = [
        {},
        {"REQUEST_METHOD": "GET", "QUERY_STRING": b"email=\xff&token=\xfe"},
        {"REQUEST_METHOD": "POST", "QUERY_STRING": f"email=ann%40example.org&token={token}"},
        {
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": f"email=ann%40example.org&token={token}",
            "CONTENT_LENGTH": "400",
            "wsgi.input": io.BytesIO(b"List-Unsubscribe=One-Click"),  # shorter than it said
        },
    ]

    class Trickle(io.BytesIO):
        """An input that gives one byte per read, as a slow client's body may arrive."""

        def read(self, size: int | None = -1) -> bytes:
            return super().read(1)

    environments.append(
        {
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": f"email=bob%40example.org&token={unsubscribe_token(SECRET, 'bob@example.org')}",
            "CONTENT_LENGTH": "26",
            "wsgi.input": Trickle(b"List-Unsubscribe=One-Click"),
        }
    )
    for environ in environments:
        body = b"".join(app(environ, start))
        assert body.startswith(b"<!doctype html>")
    assert seen == ["400 Bad Request", "400 Bad Request", "400 Bad Request", "200 OK", "200 OK"]
    assert [e.source for e in entries(config)] == ["one-click", "one-click"]


# ---- any path: the configured URL's path behind a proxy ----


def test_the_query_form_answers_on_any_path(config: Config, base: str) -> None:
    url = link(base, "ann@example.org").replace("/unsubscribe?", "/news/unsubscribe/?")
    assert request(url)[0] == 200
    assert one_click(url)[0] == 200
    assert len(entries(config)) == 1


def test_a_template_with_the_fields_in_the_path_works_behind_a_prefix(tmp_path: Path) -> None:
    template = "https://example.org/u/{email}/{token}"
    config = config_for(tmp_path / "ws", url=template)
    with running(config) as base:
        url = link(base, "ann@example.org", template=template)
        assert request(url)[0] == 200
        assert request(url.replace("/u/", "/mail/u/"))[0] == 200  # a proxy that adds a prefix
        assert request(url + "x")[0] == 400
        assert request(url.replace("/u/", "/u/extra/"))[0] == 200  # the tail from the email on
        assert one_click(url.replace("/u/", "/mail/u/"))[0] == 200
    assert [e.address for e in entries(config)] == ["ann@example.org"]


def test_another_parameter_name_in_the_template_is_the_one_read(tmp_path: Path) -> None:
    template = "https://example.org/?u={email}&sig=v1.{token}.z"
    config = config_for(tmp_path / "ws", url=template)
    with running(config) as base:
        url = link(base, "ann@example.org", template=template)
        assert one_click(url.replace("sig=v1.", "sig=v2."))[0] == 400
        assert one_click(url.replace("sig=v1.", "sig=v1x"))[0] == 400  # the "." is literal
        assert one_click(url + "z")[0] == 400  # so is the end
        # The token carries the address: without the {email} parameter the signed token still says who.
        assert one_click(url.replace("u=", "email="))[0] == 200


# ---- the secret ----


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, "é" * 15 + "x"])  # the last: 31 bytes
def test_a_weak_secret_is_refused_when_serving(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError) as err:
        unsubscribe.make_app(config_for(tmp_path / "ws", secret=secret))
    assert "DIGEST_UNSUBSCRIBE_SECRET" in str(err.value) and HINT in str(err.value)
    assert "at least 32 bytes" in str(err.value)


def test_a_secret_of_32_bytes_is_enough(tmp_path: Path) -> None:
    assert unsubscribe.make_app(config_for(tmp_path / "ws", secret="é" * 16)).secret == "é" * 16


def test_serving_needs_an_unsubscribe_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[send\] unsubscribe_url is not set"):
        unsubscribe.make_app(config_for(tmp_path / "ws", url=""))


def test_a_url_without_token_is_still_refused_by_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must contain \{token\}"):
        config_for(tmp_path / "ws", url="https://example.org/u?email={email}")


def test_a_send_refuses_a_weak_secret_and_a_build_does_not(workspace: Path, run: Run) -> None:
    env = {"DIGEST_UNSUBSCRIBE_URL": URL, "DIGEST_UNSUBSCRIBE_SECRET": "short"}
    config = load_config(workspace / "digest.toml", environ=env)
    os.environ.update(env)  # the build through the CLI sees them too (the isolated_env fixture cleans up)
    assert run("build", *MONTH).exit_code == 0
    parts = load_built(workspace / "out" / "2021-03").parts()
    now = datetime(2021, 4, 15, tzinfo=UTC)
    assert isinstance(personaliser(config, parts, now=now, preview=True), Personaliser)
    with pytest.raises(ConfigError, match="DIGEST_UNSUBSCRIBE_SECRET is 5 bytes long"):
        personaliser(config, parts, now=now)
    strong = load_config(workspace / "digest.toml", environ={**env, "DIGEST_UNSUBSCRIBE_SECRET": SECRET})
    assert personaliser(strong, parts, now=now).secret == SECRET
    # Only a mailto: link: no token, no secret needed.
    mailto = load_config(workspace / "digest.toml", environ={"DIGEST_UNSUBSCRIBE_MAILTO": "u@example.org"})
    assert personaliser(mailto, parts, now=now).unsubscribe_mailto == "u@example.org"


def test_the_serve_command_refuses_a_weak_secret_plainly(workspace: Path, run: Run, monkeypatch: Any) -> None:
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", URL)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", "too-short")
    result = run("unsubscribe", "serve", "--port", "0")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: DIGEST_UNSUBSCRIBE_SECRET is 9 bytes long;")
    assert HINT in result.stderr


def test_the_serve_command_names_a_busy_port(workspace: Path, run: Run, monkeypatch: Any) -> None:
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", URL)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", SECRET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("unsubscribe", "serve", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}:")


def test_the_serve_command_serves_until_interrupted(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from smtpserver import free_port

    config = config_for(tmp_path / "ws")
    port = free_port()
    env = {**os.environ, "DIGEST_UNSUBSCRIBE_URL": URL, "DIGEST_UNSUBSCRIBE_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "unsubscribe", "serve", "--port", str(port)],
        cwd=tmp_path / "ws",
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line == f"Unsubscribe endpoint on http://127.0.0.1:{port}/ (Ctrl-C stops)\n"
        assert one_click(link(f"http://127.0.0.1:{port}", "ann@example.org"))[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert [e.address for e in entries(config)] == ["ann@example.org"]


def test_the_module_level_app_reads_the_workspace_of_digest_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(tmp_path / "ws")
    monkeypatch.setenv("DIGEST_CONFIG", str(config.paths.config_file))
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_URL", URL)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setattr(unsubscribe, "_app", None)
    app = unsubscribe.app
    assert isinstance(app, unsubscribe.Endpoint)
    assert app.suppressions == config.paths.suppressions and app.title == "Coop <News> & Co"
    assert unsubscribe.app is app
    with pytest.raises(AttributeError):
        _ = unsubscribe.nothing_here
    monkeypatch.setattr(unsubscribe, "_app", None)
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_SECRET", "weak")
    with pytest.raises(ConfigError):
        _ = unsubscribe.app


def test_a_store_that_cannot_be_written_gets_503_not_a_traceback(tmp_path: Path) -> None:
    config = config_for(tmp_path / "ws")
    config.paths.suppressions.mkdir()  # a folder where the file should be
    with running(config) as base:
        status, page, _ = one_click(link(base, "ann@example.org"))
    assert status == 503
    assert "try again later" in page and "Traceback" not in page


# ---- a real message's links, and the page in the browser ----


def sent_message(ws: Path, smtp_env: Callable[..., None]) -> tuple[str, str, str]:
    """Send the built sample to Ann through a real SMTP server: (List-Unsubscribe https, text link, html href)."""
    csv = subscribers(ws, [("ann@example.org", "Ann Lee")])
    with Server(Handler()) as server:
        smtp_env(server.port, DIGEST_UNSUBSCRIBE_SECRET=SECRET)
        from click.testing import CliRunner
        from conftest import NOW

        from digest.cli import main

        result = CliRunner().invoke(main, ["--now", NOW, "send", *MONTH, "--subscribers", str(csv), "--yes"])
        assert result.exit_code == 0, result.stderr
        msg = server.handler.messages()["ann@example.org"]
    header = re.findall(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"]))[0]
    text, html = (part.get_content() for part in msg.iter_parts())
    footer = re.search(r"Unsubscribe:\s+(\S+)", text)  # the link is on a line of its own
    href = re.findall(r'href="(https://example\.org/unsubscribe[^"]+)"', html)
    assert footer is not None and len(href) == 1
    return header, footer[1], href[0].replace("&amp;", "&")


def test_the_links_of_a_sent_message_lead_to_a_working_endpoint(
    ws: Path, smtp_env: Callable[..., None]
) -> None:
    header, footer, href = sent_message(ws, smtp_env)
    assert header == footer == href
    config = load_config(ws / "digest.toml")
    with running(config) as base:
        url = header.replace("https://example.org", base)
        status, page, _ = request(url)
        assert status == 200 and "<button" in page and "ann@example.org" in page
        assert entries(config) == []
        assert one_click(url)[0] == 200
    assert [(e.address, e.source) for e in entries(config)] == [("ann@example.org", "one-click")]


@pytest.mark.browser
def test_the_footer_link_and_its_button_in_the_browser(ws: Path, smtp_env: Callable[..., None]) -> None:
    require_browser()
    from digest.shots import open_browser

    _, _, href = sent_message(ws, smtp_env)
    config = load_config(ws / "digest.toml")
    with running(config) as base, open_browser() as browser:
        page = browser.new_page()
        page.goto(href.replace("https://example.org", base))
        assert page.title() == "Unsubscribe from Co-operative News Digest?"
        page.wait_for_timeout(300)  # a scanner's render: still nothing may happen
        assert entries(config) == []
        buttons = page.locator("button")
        assert buttons.count() == 1
        buttons.click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "You are unsubscribed"
        page.goto(href.replace("https://example.org", base))  # the link again: says so, no button
        assert page.locator("button").count() == 0
        page.close()
    (entry,) = entries(config)
    assert (entry.address, entry.reason, entry.source) == ("ann@example.org", "unsubscribed", "link")
    assert "HeadlessChrome" in entry.evidence


def test_an_address_in_a_message_is_the_address_the_link_unsubscribes(config: Config, base: str) -> None:
    """The Personaliser's own link (not one rebuilt by the test) works against the endpoint."""
    maker = Personaliser(
        subject="s",
        html="<p>__G__</p><a href='__U__'>u</a>\n",
        text="__G__\n__U__\n",
        content_hash="ab" * 32,
        sender=Address("News", "news", "example.org"),
        date=datetime(2021, 4, 1, tzinfo=UTC),
        list_id="news.example.org",
        list_name="News",
        unsubscribe_url=URL,
        secret=SECRET,
        placeholders={"greeting": "__G__", "unsubscribe_url": "__U__"},
    )
    for email in ("Zoe@xn--bcher-kva.example", "a+b&c=d@example.org", "Mixed.Case@Example.ORG"):
        url, _ = maker.unsubscribe_for(email)
        got = one_click(url.replace("https://example.org", base))
        assert got[0] == 200, (url, got)
    assert sorted(e.address for e in entries(config)) == sorted(
        normalise(a) for a in ("a+b&c=d@example.org", "Mixed.Case@Example.ORG", "Zoe@xn--bcher-kva.example")
    )
    # Signed, but an address the subscriber list refuses (never sent to): not a link of ours.
    url, _ = maker.unsubscribe_for("zoë@example.org")
    assert one_click(url.replace("https://example.org", base))[0] == 400


def test_a_token_only_link_unsubscribes_the_address_it_carries(tmp_path: Path) -> None:
    template = "https://example.org/unsubscribe?u={token}"
    config = config_for(tmp_path / "ws", url=template)
    with running(config) as base:
        url = link(base, "ann@example.org", template=template)
        assert "ann" not in url and "%40" not in url
        assert one_click(url.replace("u=", "u=x"))[0] == 400
        assert one_click(url)[0] == 200
    with open_suppressions(config) as store:
        assert store.is_suppressed("ann@example.org")

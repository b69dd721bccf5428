"""The SMTP dialogue on its own (digest/smtp.py) against a real aiosmtpd server and trustme TLS."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from smtpserver import Handler, Server, free_port, server_tls_context

from digest import smtp
from digest.config import load_config
from digest.errors import ConfigError, SendError


@dataclass(frozen=True)
class Msg:
    recipient: str
    wire: bytes = b"Subject: hi\r\n\r\nhello\r\n.\r\n"


def settings(port: int, **kw: object) -> smtp.SmtpSettings:
    return smtp.SmtpSettings(**{"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("pipelining", [False, True], ids=["classic", "pipelining"])
def test_deliver_reports_each_refusal_with_its_stage(pipelining: bool) -> None:
    handler = Handler(
        pipelining=pipelining,
        refuse={"bob@example.org": "550 5.1.1 no such user"},
        data_command_refuse={"carl@example.org": "554 5.7.1 not for carl"},
    )
    with Server(handler) as server:
        conn = smtp.connect(settings(server.port))
        try:
            assert smtp.deliver(conn, "news@example.org", Msg("ann@example.org")).startswith("250 ")
            with pytest.raises(smtp.Reply) as rcpt:
                smtp.deliver(conn, "news@example.org", Msg("bob@example.org"))
            assert (rcpt.value.code, rcpt.value.stage) == (550, "RCPT TO")
            with pytest.raises(smtp.Reply) as data:
                smtp.deliver(conn, "news@example.org", Msg("carl@example.org"))
            assert (data.value.code, data.value.stage) == (554, "DATA")
            handler.data_faults.append("451 4.3.0 busy")
            with pytest.raises(smtp.Reply) as end:
                smtp.deliver(conn, "news@example.org", Msg("dee@example.org"))
            assert (end.value.code, end.value.stage, end.value.text) == (451, "end of DATA", "4.3.0 busy")
            # The connection is still good after each refusal (RSET sent where needed).
            assert smtp.deliver(conn, "news@example.org", Msg("eve@example.org")).startswith("250 ")
        finally:
            smtp.close(conn)
    assert handler.counts() == {"ann@example.org": 1, "eve@example.org": 1}


def test_an_untrusted_certificate_is_fatal_and_a_trusted_one_works(tmp_path: Path) -> None:
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = server_tls_context(ca.issue_cert("127.0.0.1"))
    with Server(Handler(), tls_context=tls, require_starttls=True) as server:
        good = settings(server.port, security="starttls", ca_file=tmp_path / "ca.pem")
        smtp.probe(good)
        other.cert_pem.write_to_path(str(tmp_path / "other.pem"))
        with pytest.raises(smtp.Fatal, match="certificate is not trusted"):
            smtp.connect(settings(server.port, security="starttls", ca_file=tmp_path / "other.pem"))
        assert smtp.send_one(good, "news@example.org", Msg("ann@example.org")).startswith("250 ")


def test_no_starttls_offered_is_fatal() -> None:
    with Server(Handler()) as server, pytest.raises(smtp.Fatal, match="does not offer STARTTLS"):
        smtp.connect(settings(server.port, security="starttls"))


def test_nothing_listening_is_a_send_error_saying_nothing_was_sent() -> None:
    port = free_port()
    with pytest.raises(SendError, match=rf"cannot connect to 127\.0\.0\.1:{port}: .*; nothing was sent"):
        smtp.probe(settings(port))


def test_the_rate_limit_spaces_messages_evenly() -> None:
    limit, stop = smtp.RateLimit(50), threading.Event()
    began = time.monotonic()
    for _ in range(11):
        limit.wait(stop)
    assert time.monotonic() - began >= 0.18  # ten gaps of 20 ms
    unlimited = smtp.RateLimit(0)
    assert unlimited.interval == 0
    began = time.monotonic()
    for _ in range(1000):
        unlimited.wait(stop)
    assert time.monotonic() - began < 0.18


def test_a_stopped_send_does_not_wait_for_the_rate() -> None:
    limit, stop = smtp.RateLimit(0.1), threading.Event()  # one message per 10 s
    limit.wait(stop)
    stop.set()
    began = time.monotonic()
    limit.wait(stop)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("192.0.2.10", False), ("[::1]", True)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert smtp.is_loopback(host) is loopback


def test_settings_use_the_usual_port_of_the_security_mode(tmp_path: Path) -> None:
    for security, port in (("starttls", 587), ("ssl", 465), ("none", 25)):
        config = load_config(cwd=tmp_path, environ={"DIGEST_SMTP_SECURITY": security})
        assert smtp.smtp_settings(config).port == port
    config = load_config(cwd=tmp_path, environ={"DIGEST_SMTP_PORT": "2525"})
    assert smtp.smtp_settings(config).address == "localhost:2525"


def test_settings_refuse_clear_text_off_loopback_and_a_login_without_password(tmp_path: Path) -> None:
    env = {"DIGEST_SMTP_SECURITY": "none", "DIGEST_SMTP_HOST": "192.0.2.10"}
    with pytest.raises(ConfigError, match="clear text"):
        smtp.smtp_settings(load_config(cwd=tmp_path, environ=env))
    with pytest.raises(ConfigError, match="DIGEST_SMTP_PASSWORD is not set"):
        smtp.smtp_settings(load_config(cwd=tmp_path, environ={"DIGEST_SMTP_USERNAME": "u"}))
    found = smtp.smtp_settings(
        load_config(cwd=tmp_path, environ={"DIGEST_SMTP_USERNAME": "u", "DIGEST_SMTP_PASSWORD": "pw"})
    )
    assert found.password == "pw" and "pw" not in repr(found)

"""`digest send` on the command line: prompts, --dry-run, --test, --status, and the exact error texts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme
from click.testing import Result
from conftest import NOW, write_item
from smtpserver import (
    MONTH,
    PEOPLE,
    Handler,
    Server,
    free_port,
    journal_rows,
    server_tls_context,
    subscribers,
)

from digest.presend import placeholder_host

Run = Callable[..., Result]


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) of a received multipart/alternative message."""
    assert msg.get_content_type() == "multipart/alternative"
    text, html = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    return text.get_content(), html.get_content()


def test_no_verify_is_loud_and_still_encrypts(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    handler = Handler()
    tls = server_tls_context(trustme.CA().issue_cert("127.0.0.1"))  # a CA nobody trusts
    with Server(handler, tls_context=tls, require_starttls=True) as server:
        smtp_env(server.port, "starttls")
        csv = subscribers(ws, PEOPLE[:1])
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--insecure-no-verify")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(
        f"WARNING: TLS certificate verification is OFF for 127.0.0.1:{server.port}"
    )
    assert handler.counts() == {"ann@example.org": 1}


def test_a_username_without_a_password_in_the_environment_is_an_error(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    smtp_env(free_port(), DIGEST_SMTP_USERNAME="digest")
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: smtp.username is 'digest' but DIGEST_SMTP_PASSWORD is not set "
        "(the password is read from the environment only)\n"
    )


def test_dry_run_prints_one_message_and_connects_to_nothing(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    port = free_port()
    smtp_env(port)  # nothing listens there: a connection attempt would fail
    csv = subscribers(workspace, [*PEOPLE, ("ANN@example.org", "Ann again")])
    result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.startswith(b"From: Co-operative News <news@example.org>\r\n")
    assert b"To: Ann Lee <ann@example.org>\r\n" in result.stdout_bytes
    assert "Hello Ann Lee," in result.stdout
    assert result.stderr.startswith("out/2021-03/ is not built yet: building it first\n")
    assert (
        "subscribers.csv: 4 unique addresses, 1 duplicate merged\n"
        f"dry run: would send 4 messages via 127.0.0.1:{port} (0 suppressed); sent nothing\n"
        "Warning: this digest still points at a reserved domain"  # the sample's example.org: see below
    ) in result.stderr
    assert not (workspace / "out" / "2021-03" / "journal.sqlite").exists()  # no journal either


@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_a_greeting_naming_a_column_the_list_lacks_is_an_error(
    ws: Path, run: Run, smtp_env: Callable[..., None], mode: str
) -> None:
    path = ws / "subscribers.csv"
    path.write_text("email,name,city\nann@example.org,Ann,Geneva\n", encoding="utf-8")
    with Server(Handler()) as server:
        smtp_env(server.port, DIGEST_GREETING="Dear {nmae} of {city},")
        assert run("build", *MONTH).exit_code == 0  # built with that greeting, as a send wants
        result = run("send", *MONTH, "--subscribers", "subscribers.csv", mode)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: [send] greeting uses {nmae}, which is not a column of subscribers.csv "
            "(columns: email, name, city)\n"
        )
        assert result.stdout == ""
        assert server.handler.received == []
    assert not (ws / "out" / "2021-03" / "journal.sqlite").exists()


def test_test_address_gets_one_copy_outside_the_journal(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--test", "me@example.org")
        assert result.exit_code == 0, result.stderr
        assert server.handler.counts() == {"me@example.org": 1}
    assert "test message sent to me@example.org via 127.0.0.1:" in result.stderr
    assert not (ws / "out" / "2021-03" / "journal.sqlite").exists()


def test_a_real_send_asks_first_and_no_means_nothing_is_sent(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = subscribers(ws, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), input="n\n")
        assert server.handler.received == []
        yes = run("send", *MONTH, "--subscribers", str(csv), input="y\n")
        assert len(server.handler.received) == 4
    assert result.exit_code == 1
    assert "Send 'Co-operative News Digest: March 2021' to 4 recipients via 127.0.0.1:" in result.stderr
    assert result.stderr.endswith("Error: not sent: confirmation declined\n")
    assert yes.exit_code == 0, yes.stderr


def test_the_prompt_warns_of_what_still_points_at_a_reserved_domain(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    """example.org and the like (RFC 2606) are placeholders no one can own: left in base_url, [email] from
    or an item's link (the example item `digest init` writes), they would reach the list. The prompt says
    so; a workspace without any is not warned."""
    csv = subscribers(workspace, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(server.port)
        sample = run("send", *MONTH, "--subscribers", str(csv), input="n\n")
        warning = (
            "Warning: this digest still points at a reserved domain (example.org and the like: no one can "
            "own them; left from an example?) or an address that is not public (127.0.0.1, 10.x, 192.168.x: "
            "only readers inside that network reach it): its web version, https://example.org/coop-digest/2021-03/ "
            "(base_url); its unsubscribe link, https://example.org/unsubscribe?u={token} ([send] "
            "unsubscribe_url): no reader could unsubscribe; its unsubscribe address, "
            "unsubscribe@example.org ([send] unsubscribe_mailto); its From address, news@example.org "
            "([email] from); its Reply-To address, communications@example.org ([email] reply_to)\n"
        )
        assert warning in sample.stderr
        dry = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
        assert dry.exit_code == 0 and warning in dry.stderr  # the dry run says it too
        config = workspace / "digest.toml"
        text = config.read_text(encoding="utf-8").replace("example.org", "coop.news.coop")
        config.write_text(text, encoding="utf-8")
        smtp_env(
            server.port,
            DIGEST_UNSUBSCRIBE_URL="https://coop.news.coop/unsubscribe?u={token}",
            DIGEST_UNSUBSCRIBE_MAILTO="unsubscribe@coop.news.coop",
        )
        shutil.rmtree(workspace / "out")
        real = run("send", *MONTH, "--subscribers", str(csv), input="n\n")
        assert real.exit_code == 1 and "Send 'Co-operative News Digest: March 2021'" in real.stderr
        assert "reserved domain" not in real.stderr
        write_item(
            workspace / "items",
            "2021-03-30-welcome.md",
            "---\ntitle: Welcome\ndate: 2021-03-30\ncategory: News\nurl: https://www.EXAMPLE.org./news\n"
            "summary: An example.\n---\n",
        )
        shutil.rmtree(workspace / "out")
        example = run("send", *MONTH, "--subscribers", str(csv), input="n\n")
        assert (
            "reach it): items/2021-03-30-welcome.md: its link, https://www.EXAMPLE.org./news\n"
        ) in example.stderr
        assert server.handler.received == []


@pytest.mark.parametrize(
    ("host", "reserved"),
    [
        ("example.org", True),
        ("www.EXAMPLE.org.", True),  # any case, a trailing dot
        ("news.example.com", True),
        ("example.net", True),
        ("shop.example", True),
        ("mail.test", True),
        ("nowhere.invalid", True),
        ("localhost", True),
        ("app.localhost", True),
        ("myexample.org", False),  # a name that only ends like one
        ("example.org.evil.com", False),
        ("contest", False),
        ("examples.org", False),
        ("ica.coop", False),
        ("", False),
        # As a browser reads a name: full-width letters, ideographic full stops, a trailing dot.
        ("ｅｘａｍｐｌｅ。org", True),
        ("news．example．com", True),
        ("news.example.org.", True),
        ("EXAMPLE.ORG", True),
        # Addresses no reader outside the sender's network reaches; a public one is fine.
        ("127.0.0.1", True),
        ("10.0.0.8", True),
        ("192.168.1.20", True),
        ("192.0.2.1", True),  # documentation (RFC 5737)
        ("::1", True),
        ("[::1]", True),
        ("[IPv6:2001:db8::1]", True),  # an e-mail address literal, documentation (RFC 3849)
        ("[192.0.2.7]", True),
        ("93.184.215.14", False),
        ("2606:4700::6810:84e5", False),
        ("[203.0.114.9]", False),
        ("127.1", True),  # the short forms browsers read as 127.0.0.1
        ("0x7f.1", True),
        ("2130706433", True),
        ("1.1", False),  # 1.0.0.1, public
        ("cafe.example.net", True),
        ("cafe.coop", False),
    ],
)
def test_reserved_hosts(host: str, reserved: bool) -> None:
    assert placeholder_host(host) is reserved


def test_a_piped_answer_to_the_prompt_ends_its_line(ws: Path, smtp_env: Callable[..., None]) -> None:
    # A real process with a pipe for stdin (CliRunner echoes input as a terminal would, so it cannot tell).
    csv = subscribers(ws, PEOPLE[:1])
    with Server(Handler()) as server:
        smtp_env(server.port)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        command = [sys.executable, "-m", "digest", "--now", NOW, "send", *MONTH, "--subscribers", str(csv)]
        done = subprocess.run(
            command, cwd=ws, env=env, input="y\n", capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert server.handler.counts() == {"ann@example.org": 1}
    prompt = next(line for line in done.stderr.splitlines() if line.startswith("Send 'Co-operative"))
    assert prompt.endswith("? [y/N]: ")  # the status that follows starts on a line of its own


def test_bad_rows_are_all_reported_before_anything_is_sent(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    csv = ws / "subscribers.csv"
    csv.write_text(
        "email,name\n"
        "ann@example.org,Ann\n"
        "not-an-address,Bob\n"
        '"eve@example.org","Eve\r\nBcc: everyone@example.org"\n'
        "carl@example.org,Carl,extra\n"
        ",Nobody\n"
        "dee@example.org,Dee\n",
        encoding="utf-8",
    )
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 1
        assert server.handler.received == []
        skipped = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--skip-invalid")
        assert skipped.exit_code == 0, skipped.stderr
        assert sorted(server.handler.counts()) == ["ann@example.org", "dee@example.org"]
    assert result.stderr == (
        "Error: 4 bad rows in the subscriber list:\n"
        f"{csv}:3: 'not-an-address' is not a valid email address: "
        "An email address must have an @-sign.\n"
        f"{csv}:4: line breaks are not allowed in an email address or a name\n"
        f"{csv}:6: 3 fields, the header has 2\n"
        f"{csv}:7: the email is empty\n"
        "Fix them, or pass --skip-invalid to send to the good rows only.\n"
    )
    assert "4 bad rows skipped" in skipped.stderr


def test_clear_text_is_refused_to_a_host_that_is_not_loopback(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(free_port())
    monkeypatch.setenv("DIGEST_SMTP_HOST", "192.0.2.10")  # TEST-NET-1: never contacted, refused before
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        'Error: smtp.security = "none" sends in clear text and is allowed only to a loopback address'
    )


def test_a_dry_run_checks_the_smtp_settings_as_a_real_send_does(
    ws: Path, run: Run, smtp_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_env(free_port())
    csv = str(subscribers(ws, PEOPLE))
    monkeypatch.setenv("DIGEST_SMTP_HOST", "192.0.2.10")  # TEST-NET-1: never contacted
    real, dry = [run("send", *MONTH, "--subscribers", csv, flag) for flag in ("--yes", "--dry-run")]
    assert real.exit_code == dry.exit_code == 1
    assert dry.stderr == real.stderr
    assert dry.stderr.startswith('Error: smtp.security = "none" sends in clear text')
    assert dry.stdout == ""
    monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIGEST_SMTP_USERNAME", "digest")  # and no DIGEST_SMTP_PASSWORD
    real, dry = [run("send", *MONTH, "--subscribers", csv, flag) for flag in ("--yes", "--dry-run")]
    assert real.exit_code == dry.exit_code == 1
    assert dry.stderr == real.stderr
    assert "DIGEST_SMTP_PASSWORD is not set" in dry.stderr


def test_secrets_in_the_config_file_are_refused(workspace: Path, run: Run) -> None:
    config = workspace / "digest.toml"
    config.write_text(config.read_text() + '\n[smtp]\nhost = "smtp.example.org"\npassword = "hunter2"\n')
    result = run("send", *MONTH, "--subscribers", "x.csv", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {config}: smtp.password: secrets are never read from the config file; set the environment "
        "variable DIGEST_SMTP_PASSWORD instead (and remove the secret from the file)\n"
    )
    assert "hunter2" not in result.stderr


def test_a_subject_with_a_line_break_never_reaches_a_header(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    smtp_env(free_port(), DIGEST_SUBJECT="News\r\nBcc: everyone@example.org")
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--dry-run")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: environment variable DIGEST_SUBJECT (setting subject): must be a single line (no line breaks)\n"
    )


def test_status_without_a_send(workspace: Path, run: Run) -> None:
    result = run("send", *MONTH, "--status")
    assert result.exit_code == 1
    assert result.stderr == "Error: no send journal in out/2021-03/: nothing was sent for it yet\n"


@pytest.mark.parametrize(
    ("text", "per_second"), [("10", 10.0), ("10/s", 10.0), ("600/m", 10.0), ("3600/h", 1.0), ("0", 0.0)]
)
def test_rates(text: str, per_second: float) -> None:
    from digest.config import parse_rate

    assert parse_rate(text) == per_second


def test_a_bad_rate_is_a_usage_error(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    smtp_env(free_port())
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes", "--rate", "fast")
    assert result.exit_code == 2
    assert (
        "Error: Invalid value for '--rate': 'fast': use messages per second, minute or hour, e.g. 10/s"
        in result.stderr
    )


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("DIGEST_SMTP_PORT", "smtp", "smtp.port): expected a port number"),
        ("DIGEST_SMTP_SECURITY", "tls", "smtp.security): expected starttls, ssl or none, got 'tls'"),
        ("DIGEST_SMTP_VERIFY", "maybe", "smtp.verify): expected true or false"),
        (
            "DIGEST_UNSUBSCRIBE_URL",
            "http://x.org/u?e={email}",
            "send.unsubscribe_url): must be an https:// URL",
        ),
        ("DIGEST_UNSUBSCRIBE_URL", "https://x.org/u?e={mail}", "unknown field {mail}"),
        ("DIGEST_SEND_RATE", "fast", "send.rate): 'fast': use messages per second, minute or hour"),
        ("DIGEST_GREETING", "Hi {name!r},", "send.greeting): 'Hi {name!r},': use plain column names"),
        ("DIGEST_SEND_CONNECTIONS", "0", "send.connections): expected a whole number from 1 to 64"),
    ],
)
def test_bad_send_settings_name_the_variable(
    ws: Path, run: Run, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = run("send", *MONTH, "--subscribers", "x.csv", "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: environment variable {variable} (setting ")
    assert why in result.stderr


def _command(*args: str) -> tuple[list[str], dict[str, str]]:
    """`digest` as a real process, with this checkout on the path."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return [sys.executable, "-m", "digest", "--now", NOW, *args], env


def test_dry_run_reports_bad_rows_before_any_would_send(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    smtp_env(free_port())
    csv = ws / "subscribers.csv"
    csv.write_text("email,name\nann@example.org,Ann\nnot-an-address,Bob\n", encoding="utf-8")
    result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "would send" not in result.stderr
    assert result.stderr.startswith("Error: 1 bad row in the subscriber list:\n")
    skipped = run("send", *MONTH, "--subscribers", str(csv), "--dry-run", "--skip-invalid")
    assert skipped.exit_code == 0, skipped.stderr
    assert "1 unique address, 1 bad row skipped\n" in skipped.stderr
    assert "dry run: would send 1 message via" in skipped.stderr


@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_a_bad_rate_stops_a_dry_run_as_it_stops_a_send(
    ws: Path, run: Run, smtp_env: Callable[..., None], mode: str
) -> None:
    smtp_env(free_port())
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), mode, "--rate", "abc")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Error: Invalid value for '--rate': 'abc': use messages per second" in result.stderr


def test_a_non_ascii_smtp_password_is_a_clear_error(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    smtp_env(free_port(), DIGEST_SMTP_USERNAME="digest", DIGEST_SMTP_PASSWORD="pässwörd")
    result = run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE)), "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: environment variable DIGEST_SMTP_PASSWORD: has a non-ASCII")
    assert "Traceback" not in result.stderr and "pässwörd" not in result.stderr


def test_status_prints_each_count_in_its_place(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    refuse = {"bob@example.org": "550 no such user", "zoe@example.net": "450 busy"}
    with Server(Handler(refuse=refuse)) as server:
        smtp_env(server.port)
        csv = str(subscribers(ws, [*PEOPLE, ("dee@example.org", "Dee")]))
        assert run("send", *MONTH, "--subscribers", csv, "--yes", "--retries", "0").exit_code == 1
    result = run("send", *MONTH, "--status")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "out/2021-03/journal.sqlite: 3 sent, 1 failed, 1 deferred, 0 pending\n"


def test_status_is_read_only(ws: Path, run: Run, smtp_env: Callable[..., None]) -> None:
    import shlex
    import shutil

    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:2])), "--yes").exit_code == 0
    out = ws / "out"
    assert not list(out.rglob("*.sqlite-*"))  # a send folds its WAL into the journal as it ends
    command, env = _command("send", *MONTH, "--status")
    if os.geteuid() == 0:  # root writes anywhere: make out/ a read-only mount, in a namespace of its own
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare(1): no way to make a read-only folder")
        mount = f"mount --bind -o ro {shlex.quote(str(out))} {shlex.quote(str(out))}"
        command = ["unshare", "-m", "sh", "-c", f"{mount} && exec {shlex.join(command)}"]
    else:
        for path in [out, out / "2021-03"]:
            path.chmod(0o555)
    try:
        done = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=60)
    finally:
        for path in [out, out / "2021-03"]:
            path.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "out/2021-03/journal.sqlite: 2 sent, 0 failed, 0 deferred, 0 pending (complete)\n"
    assert done.stderr == ""
    assert not (out / ".2021-03.lock").exists()
    assert not list(out.rglob("*.sqlite-*"))


def test_status_takes_no_lock_and_does_not_wait_for_a_build(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    from digest.outdir import lock

    with Server(Handler()) as server:
        smtp_env(server.port)
        assert run("send", *MONTH, "--subscribers", str(subscribers(ws, PEOPLE[:1])), "--yes").exit_code == 0
    lock_file = ws / "out" / ".2021-03.lock"
    with lock(ws / "out" / "2021-03", exclusive=True):  # a build is writing the folder
        before = lock_file.stat()
        result = run("send", *MONTH, "--status")
        after = lock_file.stat()
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "out/2021-03/journal.sqlite: 1 sent, 0 failed, 0 deferred, 0 pending (complete)\n"
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert not lock_file.exists()


# ---- Ctrl-C and a journal that cannot be written, in real processes ----


def test_ctrl_c_twenty_times_never_crashes_and_never_loses_a_record(
    ws: Path, smtp_env: Callable[..., None]
) -> None:
    import signal

    total, connections, interrupts = 300, 3, 20
    people = [(f"p{n:03d}@example.org", f"Person {n}") for n in range(total)]
    csv = subscribers(ws, people)
    handler = Handler(delay=0.03)  # a slow server: messages are in flight when Ctrl-C comes
    outcomes: list[int] = []
    with Server(handler) as server:
        smtp_env(server.port)
        command, env = _command("send", *MONTH, "--subscribers", str(csv), "--yes")
        command += ["--connections", str(connections)]
        for _ in range(interrupts):
            before = len(handler.received)
            proc = subprocess.Popen(
                command,
                cwd=ws,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                # The child must get SIGINT's default (Ctrl-C) handling even if this run ignores it (nohup).
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            deadline = time.monotonic() + 30
            while len(handler.received) < before + 3 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
            outcomes.append(proc.returncode)
            assert proc.returncode in (130, 1), err
            assert "Traceback" not in err and "Segmentation fault" not in err, err
            if proc.returncode == 130:
                assert err.endswith("Interrupted.\n"), err
            # Every connection finished the message it was on and recorded it before the process ended:
            # what the server accepted and what the journal says was sent are the same, exactly.
            sent = {k for k, (s, *_r) in journal_rows(ws).items() if s == "sent"}
            assert sent == set(handler.counts()), set(handler.counts()) ^ sent
        assert all(n == 1 for n in handler.counts().values())  # nobody twice
        assert outcomes.count(130) >= 15  # almost every interrupt struck mid-send
        final = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
    assert handler.counts() == {e: 1 for e, _ in people}


def test_a_journal_that_cannot_be_written_stops_the_send_before_the_next_delivery(
    ws: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    import resource

    people = [(f"p{n:03d}@example.org", "") for n in range(400)]
    csv = subscribers(ws, people)
    journal = ws / "out" / "2021-03" / "journal.sqlite"
    handler = Handler()
    with Server(handler) as server:
        smtp_env(server.port)
        command, env = _command("send", *MONTH, "--subscribers", str(csv), "--yes")
        limit = 160 * 1024  # no file of the process may grow past this: the journal's WAL soon cannot

        def small_files() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        for _run in range(2):
            done = subprocess.run(
                command, cwd=ws, env=env, capture_output=True, text=True, timeout=120, preexec_fn=small_files
            )
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr
            assert f"{journal}: cannot write the send journal (" in done.stderr, done.stderr
            sent = {k for k, (s, *_r) in journal_rows(ws).items() if s == "sent"}
            received = set(handler.counts())
            assert sent <= received
            # Only the message whose result could not be written went out unrecorded; nothing after it.
            assert len(received - sent) <= 1, received - sent
            assert len(received) < len(people)
        # The one message each run could not record went to a person the next run tried again.
        assert sum(handler.counts().values()) - len(handler.counts()) <= 1
        # With room again, the send finishes; only those messages may have gone twice.
        again = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert again.exit_code == 0, again.stderr
    assert set(handler.counts()) == {e for e, _ in people}
    assert sum(handler.counts().values()) - len(people) <= 2

"""`digest bounces --imap` against a real Dovecot on loopback, started by the fixture with its own config (a
passwd-file, a Maildir, TLS with a certificate made by trustme) and stopped after each test.

Skipped only when Dovecot is not installed and DIGEST_REQUIRE_TOOLS is unset (CI sets it: there a missing
Dovecot fails). Install it with `apt-get install -y --no-install-recommends dovecot-imapd`.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from click.testing import Result
from conftest import require_tool, stop_process
from test_bounces import ALL, UNTOUCHED, check_full_run, entries, make_workspace, message

# Read at import: the autouse fixture of conftest.py clears DIGEST_* variables before each test.
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
PASSWORD = "s3cret-imap"  # the test server's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    """A running Dovecot: its ports, its Maildir, the CA that signed its certificate."""

    imap_port: int
    imaps_port: int
    maildir: Path
    ca_file: Path

    def client(self) -> imaplib.IMAP4:
        """A plain connection, logged in, INBOX selected."""
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port)
        conn.login("bounces", PASSWORD)
        conn.select("INBOX")
        return conn

    def deliver(self, names: list[str]) -> dict[str, str]:
        """Append fixtures to INBOX; fixture name -> UID."""
        uids = {}
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port)
        conn.login("bounces", PASSWORD)  # no SELECT: the messages stay \\Recent for the next session
        for name in names:
            typ, data = conn.append("INBOX", None, None, message(name))
            assert typ == "OK", data
            uids[name] = data[0].split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]").decode()
        conn.logout()
        return uids

    def flags(self, *, recent: bool = False) -> dict[str, str]:
        """UID -> its flags (without \\Recent unless asked), read with EXAMINE (which changes nothing)."""
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port)
        conn.login("bounces", PASSWORD)
        conn.select("INBOX", readonly=True)
        _typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
        conn.logout()
        out = {}
        for line in data:
            if not isinstance(line, bytes):
                continue
            text = line.decode()
            uid = text.split("UID ")[1].split(" ")[0].rstrip(")")
            inside = text.split("FLAGS (")[1].split(")")[0]
            inside = inside if recent else inside.replace("\\Recent", "")
            out[uid] = " ".join(inside.split())
        return out


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """Dovecot on 127.0.0.1: plain IMAP (STARTTLS offered) and IMAPS, one user with a password."""
    require_tool(
        DOVECOT, "dovecot is not installed (apt-get install -y --no-install-recommends dovecot-imapd)"
    )
    # The mail processes may not run as root (Dovecot refuses uid 0), and pytest's tmp folders are private
    # to their owner: the server's files go in a folder of their own under /tmp, owned by the mail user.
    # Short, too: Dovecot's unix sockets live there, and a socket path has at most 107 bytes.
    user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    home = Path(tempfile.mkdtemp(prefix="dc-"))
    try:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(home / "server.pem"))
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        maildir = home / "Maildir"
        for sub in ("", "cur", "new", "tmp"):
            (maildir / sub).mkdir(exist_ok=True)
        (home / "passwd").write_text(f"bounces:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
        os.chmod(home, 0o755)  # noqa: S103 - the mail user must reach its Maildir; test files only
        if os.geteuid() == 0:
            for path in [maildir, *maildir.iterdir()]:
                os.chown(path, user.pw_uid, user.pw_gid)
        imap_port, imaps_port = _free_port(), _free_port()
        conf = home / "dovecot.conf"
        conf.write_text(
            f"""
base_dir = {home}/run
state_dir = {home}/state
log_path = {home}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{home}/server.pem
ssl_key = <{home}/server.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {"dovenull" if os.geteuid() == 0 else user.pw_name}
default_internal_user = {"dovecot" if os.geteuid() == 0 else user.pw_name}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {home}/passwd
}}
userdb {{
  driver = static
  args = uid={user.pw_uid} gid={user.pw_gid} home={home}
}}
mail_location = maildir:{maildir}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
""",
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            for _ in range(200):  # ready when it answers; a bounded wait, not a timing assertion
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"dovecot did not start: {out}")
                try:
                    socket.create_connection(("127.0.0.1", imap_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield Dovecot(imap_port, imaps_port, maildir, tmp_path / "ca.pem")
        finally:
            stop_process(proc)
            if proc.stdout:
                proc.stdout.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def imap_ws(tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace (as the current folder) that trusts the test CA and knows the IMAP password."""
    ws = make_workspace(tmp_path / "ws", extra=f'[smtp]\nca_file = "{dovecot.ca_file}"\n')
    monkeypatch.chdir(ws)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    return ws


def _args(dovecot: Dovecot, security: str) -> list[str]:
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    return [
        "bounces",
        "--imap",
        "127.0.0.1",
        "--user",
        "bounces",
        "--port",
        str(port),
        "--security",
        security,
    ]


def test_imap_end_to_end(dovecot: Dovecot, imap_ws: Path, run: Callable[..., Result]) -> None:
    uids = dovecot.deliver(ALL)
    result = run(*_args(dovecot, "ssl"))
    assert result.exit_code == 0, result.output
    check_full_run(imap_ws)
    assert len(result.stdout.splitlines()) == len(ALL)
    assert "14 messages: 6 suppressed" in result.stderr
    flags = dovecot.flags()
    for name, uid in uids.items():
        # Unknown messages: no flag at all (fetched with BODY.PEEK, so not even \Seen).
        assert flags[uid] == ("" if name in UNTOUCHED else "$DigestProcessed"), name
    # Nothing deleted or moved: every message is still in INBOX.
    assert set(flags) == set(uids.values())
    again = run(*_args(dovecot, "ssl"))
    assert (
        "3 messages: 0 suppressed, 0 transient bounces counted, 0 ignored, 3 left untouched" in again.stderr
    )


def test_imap_dry_run_changes_nothing(dovecot: Dovecot, imap_ws: Path, run: Callable[..., Result]) -> None:
    uids = dovecot.deliver(ALL)
    result = run(*_args(dovecot, "starttls"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would suppress bob@example.com (bounced)" in result.stdout
    assert "6 to suppress" in result.stderr
    # Read-only (EXAMINE): not even \\Recent, which a read-write SELECT takes, is gone.
    assert dovecot.flags(recent=True) == {uid: "\\Recent" for uid in uids.values()}
    assert not (imap_ws / "suppressions.sqlite").exists()


def test_imap_plain_on_loopback_and_folder(
    dovecot: Dovecot, imap_ws: Path, run: Callable[..., Result]
) -> None:
    conn = dovecot.client()
    assert conn.create("Bounces")[0] == "OK"
    assert conn.append("Bounces", None, None, message("postfix-permanent.eml"))[0] == "OK"
    conn.logout()
    dovecot.deliver(["gmail-permanent.eml"])  # INBOX: not read
    result = run(*_args(dovecot, "none"), "--folder", "Bounces")
    assert result.exit_code == 0, result.output
    assert set(entries(imap_ws)) == {"alice@example.net"}
    result = run(*_args(dovecot, "none"), "--folder", "Nope")
    assert result.exit_code == 1
    assert "cannot open folder 'Nope'" in result.stderr


def test_imap_untrusted_certificate_and_bad_login(
    dovecot: Dovecot, tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path / "other")  # no ca_file: the test CA is not trusted
    monkeypatch.chdir(ws)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    for security in ("ssl", "starttls"):
        result = run(*_args(dovecot, security))
        assert result.exit_code == 1
        assert "the server's TLS certificate is not trusted" in result.stderr, result.stderr
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "wrong")
    result = run(*_args(dovecot, "none"))
    assert result.exit_code == 1
    assert "login as 'bounces' refused" in result.stderr
    assert "wrong" not in result.stderr
    result = run(
        "bounces", "--imap", "127.0.0.1", "--user", "u", "--port", str(_free_port()), "--security", "none"
    )
    assert result.exit_code == 1 and "cannot connect" in result.stderr


def test_imap_server_without_keywords_gets_seen(dovecot: Dovecot, imap_ws: Path) -> None:
    from digest.bounces.mailbox import ImapMailbox, ImapSettings

    settings = ImapSettings(
        host="127.0.0.1",
        port=dovecot.imaps_port,
        security="ssl",
        user="bounces",
        password=PASSWORD,
        ca_file=dovecot.ca_file,
    )
    uids = dovecot.deliver(["postfix-permanent.eml", "person.eml"])
    box = ImapMailbox(settings, readonly=False)
    try:
        assert box.flag == "$DigestProcessed"
        box.flag = "\\Seen"  # what a server whose PERMANENTFLAGS lack \* gets
        assert [s.key for s in box.unprocessed()] == list(uids.values())
        box.mark(uids["postfix-permanent.eml"])
        assert [s.key for s in box.unprocessed()] == [uids["person.eml"]]
    finally:
        box.close()
    assert dovecot.flags()[uids["postfix-permanent.eml"]] == "\\Seen"
    assert ssl.OPENSSL_VERSION  # the TLS path above was real

"""`digest bounces` on a Maildir and the parsing underneath: bounce messages in the shapes Postfix, Exim,
Exchange/Outlook and Gmail send (tests/fixtures/bounces/), auto-replies, mailed unsubscribes, and mail that
must be left alone. The IMAP path, against a real Dovecot, is in test_bounces_imap.py."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path

import pytest
from click.testing import Result

from digest.bounces.parse import auto_reply, parse
from digest.journal import Journal
from digest.message import Personaliser
from digest.suppress import Suppressions

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
CONTENT_HASH = "c0ffee" * 10 + "abcd"
SENT_TO = [
    "alice@example.net",
    "bob@example.com",
    "carol@contoso.com",
    "dave@example.info",
    "erin@example.net",
    "frank@example.net",
    "grace@example.com",
    "heidi@contoso.com",
    "ivan@example.de",
    "judy@example.net",
    "ken@example.com",
]
BOUNCED = {
    "alice@example.net",
    "bob@example.com",
    "carol@contoso.com",
    "dave@example.info",
    "erin@example.net",
}
UNTOUCHED = {"backscatter.eml", "unsubscribe-stranger.eml", "person.eml"}


def personaliser() -> Personaliser:
    """The message maker the send uses, for the Message-IDs our digests carry."""
    return Personaliser(
        subject="News digest: March 2021",
        html="<p>x</p>",
        text="x",
        content_hash=CONTENT_HASH,
        sender=Address("News", "news", "example.org"),
        date=datetime(2021, 4, 12, 7, 13, 59, tzinfo=UTC),
        list_id="news.example.org",
        list_name="News",
        unsubscribe_mailto="unsubscribe@example.org",
    )


def make_workspace(root: Path, *, extra: str = "", transient_days: int = 2) -> Path:
    """A workspace whose out/2021-03/ journal says the digest went to everyone in SENT_TO."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "items").mkdir(exist_ok=True)
    (root / "digest.toml").write_text(
        'title = "News"\n[email]\nfrom = "News <news@example.org>"\n'
        '[send]\nunsubscribe_mailto = "unsubscribe@example.org"\n'
        f"[bounces]\ntransient_days = {transient_days}\n{extra}",
        encoding="utf-8",
    )
    folder = root / "out" / "2021-03"
    folder.mkdir(parents=True)
    maker = personaliser()
    with Journal(folder / "journal.sqlite") as journal:
        journal.add_pending([(a, a) for a in SENT_TO])
        for a in SENT_TO:
            journal.record(a, "sent", code=250, reply="2.0.0 Ok", message_id=maker.message_id(a))
    return root


def message(name: str) -> bytes:
    """A fixture message with our Message-IDs filled in (@@ID:address@@)."""
    raw = (FIXTURES / name).read_bytes()
    maker = personaliser()
    for a in SENT_TO:
        raw = raw.replace(f"@@ID:{a}@@".encode(), maker.message_id(a).encode())
    assert b"@@ID:" not in raw
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_maildir(root: Path, names: list[str]) -> Path:
    """A Maildir with these fixtures in new/, each named after its file."""
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (root / "new" / f"16182{i:05d}.M{i}P1.test.{name}").write_bytes(message(name))
    return root


def entries(ws: Path) -> dict[str, tuple[str, str, str]]:
    """address -> (reason, source, evidence) on the suppression list."""
    with Suppressions(ws / "suppressions.sqlite") as store:
        return {e.address: (e.reason, e.source, e.evidence) for e in store.entries()}


def flags(maildir: Path) -> dict[str, str]:
    """fixture name -> where it is and its flags ('new:' or 'cur:S')."""
    out = {}
    for sub in ("new", "cur"):
        for p in (maildir / sub).iterdir():
            key, _, info = p.name.partition(":2,")
            out[key.split(".test.", 1)[1]] = f"{sub}:{info}"
    return out


ALL = sorted(p.name for p in FIXTURES.glob("*.eml"))


def check_full_run(ws: Path) -> None:
    """After one run over every fixture: exactly the right addresses, each with its evidence."""
    found = entries(ws)
    assert set(found) == BOUNCED | {"grace@example.com"}
    assert found["grace@example.com"][:2] == ("unsubscribed", "mailto:<CAF=unsub.1@mail.example.com>")
    assert "Subject: unsubscribe" in found["grace@example.com"][2]
    alice = found["alice@example.net"]
    assert alice[:2] == ("bounced", "bounce:<20210412071403.4F1B2C0E1A@mail.example.org>")
    assert "Status: 5.1.1" in alice[2] and "User unknown in virtual" in alice[2]
    assert "Reporting-MTA: mail.example.org" in alice[2] and "digest: 2021-03" in alice[2]
    assert "Status: 5.1.1" in found["bob@example.com"][2] and "googlemail.com" in found["bob@example.com"][2]
    carol = found["carol@contoso.com"][2]
    assert "Status: 5.1.10" in carol and "RESOLVER.ADR.RecipientNotFound" in carol
    assert "outlook.com" in carol
    dave = found["dave@example.info"][2]
    assert "non-standard bounce" in dave and "550 5.1.1" in dave and "Status: 5.1.1" in dave
    erin = found["erin@example.net"][2]
    assert "2021-04-13, 2021-04-15" in erin and "4.2.2" in erin
    assert all(v[0] == "bounced" for k, v in found.items() if k in BOUNCED)


def test_maildir_end_to_end(workspace_run: Callable[..., Result], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    box = make_maildir(tmp_path / "Maildir", ALL)
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert result.exit_code == 0, result.output
    check_full_run(ws)
    lines = result.stdout.splitlines()
    assert len(lines) == len(ALL)  # one line per message
    assert any("suppressed alice@example.net (bounced): permanent failure 5.1.1" in x for x in lines)
    assert any("counted frank@example.net" in x and "1 of 2 days" in x for x in lines)
    assert any("ignore: auto-reply (Precedence: auto_reply)" in x for x in lines)
    assert any("leave: reports stranger@example.net, to whom no digest" in x for x in lines)
    assert (
        "14 messages: 6 suppressed, 2 transient bounces counted, 3 ignored, 3 left untouched" in result.stderr
    )
    state = flags(box)
    for name in ALL:
        assert state[name] == ("new:" if name in UNTOUCHED else "cur:S"), name
    # Marked messages are not read again; the untouched ones are, and stay untouched.
    again = workspace_run(ws, "bounces", "--maildir", str(box))
    assert again.exit_code == 0
    assert len(again.stdout.splitlines()) == len(UNTOUCHED)
    assert "3 messages: 0 suppressed" in again.stderr
    assert flags(box) == state


def test_maildir_dry_run_changes_nothing(workspace_run: Callable[..., Result], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    box = make_maildir(tmp_path / "Maildir", ALL)
    before = sorted(p.relative_to(box) for p in box.rglob("*"))
    result = workspace_run(ws, "bounces", "--maildir", str(box), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would suppress alice@example.net (bounced)" in result.stdout
    assert "would suppress erin@example.net (bounced): transient failure 4.2.2" in result.stdout
    assert "6 to suppress" in result.stderr and "(dry run: nothing changed)" in result.stderr
    assert sorted(p.relative_to(box) for p in box.rglob("*")) == before
    assert not (ws / "suppressions.sqlite").exists()
    # With a list in place, a dry run reads it and still writes nothing.
    with Suppressions(ws / "suppressions.sqlite") as store:
        store.add("alice@example.net", reason="manual", source="test")
    result = workspace_run(ws, "bounces", "--maildir", str(box), "--dry-run")
    assert "already suppressed alice@example.net" in result.stdout
    assert "5 to suppress" in result.stderr
    assert set(entries(ws)) == {"alice@example.net"}
    db = sqlite3.connect(ws / "suppressions.sqlite")
    assert "bounce_transients" not in {r[0] for r in db.execute("select name from sqlite_master")}
    db.close()


def test_transient_days_count_distinct_days_and_persist(
    workspace_run: Callable[..., Result], tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws", transient_days=3)
    box = make_maildir(tmp_path / "Maildir", ["postfix-delayed-day1.eml"])
    assert workspace_run(ws, "bounces", "--maildir", str(box)).exit_code == 0
    # The same day again (another bounce) is not a second day; a later day is.
    (box / "new" / "x.test.postfix-delayed-day1b.eml").write_bytes(message("postfix-delayed-day1.eml"))
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "1 of 3 days" in result.stdout
    (box / "new" / "y.test.postfix-delayed-day2.eml").write_bytes(message("postfix-delayed-day2.eml"))
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "2 of 3 days" in result.stdout
    assert entries(ws) == {}
    later = message("postfix-delayed-day2.eml").replace(b"Thu, 15 Apr", b"Sat, 17 Apr")
    (box / "new" / "z.test.postfix-delayed-day3.eml").write_bytes(later)
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "suppressed erin@example.net (bounced): transient failure 4.2.2" in result.stdout
    assert "2021-04-13, 2021-04-15, 2021-04-17" in entries(ws)["erin@example.net"][2]
    # Taken off the list, the address starts from zero: one more transient bounce does not suppress it.
    with Suppressions(ws / "suppressions.sqlite") as store:
        store.remove("erin@example.net", source="test")
    (box / "new" / "w.test.postfix-delayed-day4.eml").write_bytes(
        message("postfix-delayed-day2.eml").replace(b"Thu, 15 Apr", b"Mon, 19 Apr")
    )
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "1 of 3 days" in result.stdout
    assert entries(ws) == {}


def test_already_suppressed_keeps_its_first_entry(
    workspace_run: Callable[..., Result], tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws")
    with Suppressions(ws / "suppressions.sqlite") as store:
        store.add("alice@example.net", reason="manual", source="command")
    box = make_maildir(tmp_path / "Maildir", ["postfix-permanent.eml"])
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "already suppressed alice@example.net (bounced)" in result.stdout
    assert "0 suppressed" in result.stderr
    assert entries(ws)["alice@example.net"][:2] == ("manual", "command")
    assert flags(box)["postfix-permanent.eml"] == "cur:S"


def test_a_forwarded_address_is_found_by_the_returned_message_id(
    workspace_run: Callable[..., Result], tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws")
    raw = message("postfix-permanent.eml").replace(b"alice@example.net", b"alice.old@forward.example")
    raw = raw.replace(b"To: alice.old@forward.example", b"To: alice@example.net")
    box = make_maildir(tmp_path / "Maildir", [])
    (box / "new" / "1.test.fwd").write_bytes(raw)
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "suppressed alice@example.net (bounced)" in result.stdout
    assert "Final-Recipient: alice.old@forward.example" in entries(ws)["alice@example.net"][2]


def test_a_bounce_without_returned_headers_is_matched_by_recipient(
    workspace_run: Callable[..., Result], tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws")
    raw = message("postfix-permanent.eml")
    raw = raw[: raw.index(b"--4F1B2C0E1A.1618211643/mail.example.org\r\nContent-Description: Undelivered")]
    box = make_maildir(tmp_path / "Maildir", [])
    (box / "new" / "1.test.bare").write_bytes(raw + b"--4F1B2C0E1A.1618211643/mail.example.org--\r\n")
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "suppressed alice@example.net (bounced)" in result.stdout
    # With no journal that knows the address, nothing is suppressed and the message stays.
    shutil.rmtree(ws / "out")
    box2 = make_maildir(tmp_path / "Maildir2", ["gmail-permanent.eml"])
    result = workspace_run(ws, "bounces", "--maildir", str(box2))
    assert "leave: reports bob@example.com" in result.stdout
    assert flags(box2)["gmail-permanent.eml"] == "new:"


def test_cli_errors(workspace_run: Callable[..., Result], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = workspace_run(ws, "bounces")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no IMAP server: pass --imap HOST (or --maildir DIR), or set [bounces] imap_host"
    )
    (tmp_path / "plain").mkdir()
    result = workspace_run(ws, "bounces", "--maildir", str(tmp_path / "plain"))
    assert result.exit_code == 1
    assert "not a Maildir (it needs cur/ and new/ folders)" in result.stderr
    result = workspace_run(ws, "bounces", "--imap", "127.0.0.1")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no IMAP user: pass --user USER or set [bounces] imap_user"
    result = workspace_run(ws, "bounces", "--imap", "127.0.0.1", "--user", "b")
    assert "DIGEST_IMAP_PASSWORD is not set" in result.stderr
    result = workspace_run(ws, "bounces", "--imap", "mail.example.org", "--user", "b", "--security", "none")
    assert result.exit_code == 1 and "allowed only to a loopback address" in result.stderr
    result = workspace_run(ws, "bounces", "--imap", "h", "--maildir", str(tmp_path))
    assert result.exit_code == 2 and "not both" in result.stderr
    # A bad flag value is said under the flag's name, not the setting's.
    result = workspace_run(ws, "bounces", "--imap", "h", "--user", "b", "--folder", "")
    assert (result.exit_code, result.stderr.strip()) == (1, "Error: --folder: must not be empty")
    result = workspace_run(ws, "bounces", "--imap", "a\nb", "--user", "b")
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        "Error: --imap: must be a single line (no line breaks)",
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: no\nSubject: hello", ""),
        ("X-Autoreply: yes", "X-Autoreply header"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        ("Precedence: bulk\nSubject: hello", ""),
        ("Subject: Out of Office: News", "vacation subject 'Out of Office: News'"),
        ("Subject: AW: Automatische Antwort: News", "vacation subject 'AW: Automatische Antwort: News'"),
        ("Subject: Réponse automatique : News", "vacation subject 'Réponse automatique : News'"),
        ("Subject: Respuesta automática: News", "vacation subject 'Respuesta automática: News'"),
        ("Subject: Re: News digest", ""),
    ],
)
def test_auto_replies(headers: str, expected: str) -> None:
    import email

    msg = email.message_from_string(f"From: a@example.com\n{headers}\n\nbody\n")
    assert auto_reply(msg) == expected


def test_parse_kinds_and_fields() -> None:
    gmail = parse(message("gmail-permanent.eml"))
    assert (gmail.kind, gmail.reporting_mta) == ("dsn", "googlemail.com")
    (f,) = gmail.failures
    assert (f.recipient, f.permanent, f.status, f.action) == ("bob@example.com", True, "5.1.1", "failed")
    assert gmail.returned_ids == (personaliser().message_id("bob@example.com").lower(),)
    delayed = parse(message("postfix-delayed-day1.eml")).failures[0]
    assert (delayed.permanent, delayed.status, delayed.action) == (False, "4.2.2", "delayed")
    assert parse(message("exim-permanent.eml")).kind == "bounce"
    assert parse(message("exim-permanent.eml")).failures[0].permanent
    assert (
        parse(message("unsubscribe.eml"), unsubscribe_mailto="unsubscribe@example.org").kind == "unsubscribe"
    )
    assert parse(message("unsubscribe.eml"), unsubscribe_mailto="other@example.org").kind == "other"
    assert parse(message("unsubscribe.eml")).kind == "other"
    reply = message("unsubscribe.eml").replace(b"Subject: unsubscribe", b"Subject: Re: Unsubscribe ")
    assert parse(reply, unsubscribe_mailto="unsubscribe@example.org").kind == "unsubscribe"
    other = message("unsubscribe.eml").replace(b"Subject: unsubscribe", b"Subject: unsubscribe me please")
    assert parse(other, unsubscribe_mailto="unsubscribe@example.org").kind == "other"
    assert parse(message("person.eml")).kind == "other"
    assert parse(message("vacation-german.eml")).kind == "autoreply"


def test_a_dsn_of_success_and_a_dsn_without_status() -> None:
    raw = message("postfix-permanent.eml")
    relayed = raw.replace(b"Action: failed\r\nStatus: 5.1.1", b"Action: relayed\r\nStatus: 2.0.0")
    got = parse(relayed)
    assert (got.kind, got.failures) == ("dsn", ())
    assert got.why == "delivery status notification (RFC 3464) that reports no failure"
    no_status = parse(raw.replace(b"Status: 5.1.1\r\n", b"").replace(b"Action: failed", b"Action: delayed"))
    assert [(f.permanent, f.status) for f in no_status.failures] == [(False, "")]
    failed = parse(raw.replace(b"Status: 5.1.1\r\n", b""))
    assert [(f.permanent, f.status) for f in failed.failures] == [(True, "")]
    transient_failed = parse(raw.replace(b"Status: 5.1.1", b"Status: 4.4.7"))
    assert [f.permanent for f in transient_failed.failures] == [False]


def test_a_bounce_of_our_own_message_id_is_not_taken_for_the_returned_one() -> None:
    mine = personaliser().message_id("alice@example.net")
    raw = f"From: news@example.org\r\nMessage-ID: {mine}\r\nSubject: x\r\n\r\nhello\r\n".encode()
    assert parse(raw).returned_ids == ()


def test_an_unparseable_message_is_left(workspace_run: Callable[..., Result], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    box = make_maildir(tmp_path / "Maildir", [])
    (box / "new" / "1.test.junk").write_bytes(b"\xff\xfe\x00garbage without headers")
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert result.exit_code == 0
    assert "1 left untouched" in result.stderr
    assert flags(box) == {"junk": "new:"}


@pytest.fixture
def workspace_run(run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run the CLI with a workspace as the current folder."""

    def invoke(ws: Path, *args: str) -> Result:
        monkeypatch.chdir(ws)
        return run(*args)

    return invoke


def test_original_recipient_names_the_subscriber_when_nothing_is_returned(
    workspace_run: Callable[..., Result], tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path / "ws")
    raw = message("postfix-permanent.eml")
    raw = raw[: raw.index(b"--4F1B2C0E1A.1618211643/mail.example.org\r\nContent-Description: Undelivered")]
    raw = raw.replace(
        b"Final-Recipient: rfc822; alice@example.net", b"Final-Recipient: rfc822; a@forward.example"
    )
    box = make_maildir(tmp_path / "Maildir", [])
    (box / "new" / "1.test.orig").write_bytes(raw + b"--4F1B2C0E1A.1618211643/mail.example.org--\r\n")
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "suppressed alice@example.net (bounced)" in result.stdout
    assert "Final-Recipient: a@forward.example" in entries(ws)["alice@example.net"][2]


def test_a_success_notice_is_marked_and_ignored(workspace_run: Callable[..., Result], tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    raw = message("postfix-permanent.eml").replace(
        b"Action: failed\r\nStatus: 5.1.1", b"Action: relayed\r\nStatus: 2.0.0"
    )
    box = make_maildir(tmp_path / "Maildir", [])
    (box / "new" / "1.test.relayed").write_bytes(raw)
    result = workspace_run(ws, "bounces", "--maildir", str(box))
    assert "ignore: delivery status notification (RFC 3464) that reports no failure" in result.stdout
    assert flags(box) == {"relayed": "cur:S"}
    assert entries(ws) == {}


def test_only_mail_servers_are_read_as_non_standard_bounces() -> None:
    import email

    from digest.bounces.parse import from_daemon

    assert from_daemon(email.message_from_string("From: MAILER-DAEMON@mx.example.org\nSubject: hi\n\nx\n"))
    assert from_daemon(email.message_from_string("From: postmaster@mx.example.org\nSubject: hi\n\nx\n"))
    assert not from_daemon(email.message_from_string("From: ken@example.com\nSubject: hi\n\nx\n"))
    # A person quoting a bounce is a person's mail, not a bounce.
    quoted = message("exim-permanent.eml").split(b"\r\n\r\n", 1)[1]
    raw = b"From: ken@example.com\r\nTo: news@example.org\r\nSubject: look at this\r\n\r\n" + quoted
    assert parse(raw).kind == "other"


def test_our_message_id_is_found_in_a_quoted_printable_part() -> None:
    mine = personaliser().message_id("bob@example.com")
    split = mine[:30] + "=\r\n" + mine[30:]
    raw = (
        "From: MAILER-DAEMON@mx.example.org\r\nSubject: failure notice\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        f"Message-ID: {split}\r\n"
    ).encode()
    assert parse(raw).returned_ids == (mine.lower(),)

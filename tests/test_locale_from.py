"""The From display name per language: [languages.xx] from_name, [email] from's name by default, the address
always [email] from's; refused with a line break or a control character (no header injection), encoded per
RFC 2047 when not ASCII. A real send (aiosmtpd on loopback) gives a French subscriber the French name."""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import Result
from conftest import write_item
from smtpserver import MONTH, Handler, Server

from digest.config import load_config
from digest.errors import ConfigError

Run = Callable[..., Result]
FRENCH_NAME = "Actualités coopératives"


def french(ws: Path, from_name: str = f'"{FRENCH_NAME}"') -> None:
    with open(ws / "digest.toml", "a", encoding="utf-8") as f:
        f.write(f'\n[languages.fr]\ntitle = "Actualités"\nfrom_name = {from_name}\n')
    write_item(
        ws / "items",
        "fr.md",
        "---\ntitle: Une nouvelle\ndate: 2021-03-12\ncategory: News\nlang: fr\nsummary: S.\n---\n",
    )


def test_each_language_s_from_name_with_the_one_address(workspace: Path) -> None:
    french(workspace)
    config = load_config(cwd=workspace)
    main = Address("Co-operative News", addr_spec="news@example.org")
    assert config.sender_in("fr") == Address(FRENCH_NAME, addr_spec="news@example.org")
    assert config.sender_in("en") == main and config.sender_in(None) == main
    assert config.sender_in("de") == main  # no table: the main one's name
    assert config.texts("fr").from_name == FRENCH_NAME and config.texts("en").from_name == "Co-operative News"


def test_the_workspace_language_s_table_may_name_it_too(workspace: Path) -> None:
    with open(workspace / "digest.toml", "a", encoding="utf-8") as f:
        f.write('\n[languages.en]\nfrom_name = "The Co-op Desk"\n')
    config = load_config(cwd=workspace)
    assert config.sender_in(None) == Address("The Co-op Desk", addr_spec="news@example.org")
    assert config.sender.display_name == "Co-operative News"  # [email] from itself is as written


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"Evil\\r\\nBcc: victim@example.org"', "must be a single line (no line breaks)"),
        ('"Evil\\nBcc: victim@example.org"', "must be a single line (no line breaks)"),
        ('"Bell\\u0007"', "no control characters in a header value (U+0007 in 'Bell\\x07')"),
        # Not a way into the headers (the name is RFC 2047-encoded), but no name has them: an invisible
        # line break, a C1 control, or a bidi control that shows "Bank" for what is written "knaB".
        ('"Evil\\u0085Bcc: x@example.org"', "no control characters in a header value (U+0085 in "),
        ('"Evil\\u2028Bcc: x@example.org"', "no control characters in a header value (U+2028 in "),
        ('"Evil\\u2029"', "no control characters in a header value (U+2029 in 'Evil\\u2029')"),
        ('"\\u0085Evil"', "no control characters in a header value (U+0085 in '\\x85Evil')"),
        ('"A\\u0080"', "no control characters in a header value (U+0080 in 'A\\x80')"),
        ('"A\\u009fB"', "no control characters in a header value (U+009F in 'A\\x9fB')"),
        ('"\\u202eknaB"', "no control characters in a header value (U+202E in '\\u202eknaB')"),
        ('"A\\u202aB"', "no control characters in a header value (U+202A in "),
        ('"A\\u2066B\\u2069"', "no control characters in a header value (U+2066 in "),
        ('"AB\\u2069"', "no control characters in a header value (U+2069 in "),
        ('"A\\u007f"', "no control characters in a header value (U+007F in "),
        ('"   "', "must not be empty"),
        ("3", "expected a string, got int"),
    ],
)
def test_a_bad_from_name_is_a_config_error_naming_the_key(workspace: Path, value: str, why: str) -> None:
    french(workspace, value)
    with pytest.raises(ConfigError) as err:
        load_config(cwd=workspace)
    assert str(err.value).startswith(
        f"{workspace / 'digest.toml'}: languages: [languages.fr]: from_name: {why}"
    )


@pytest.mark.parametrize(
    "name", ["Actualités coopératives", "Café\u00a0&\u202fCo", "עדכונים", "Nouvelles \u2014 mars", "A\u200dB"]
)
def test_a_from_name_in_any_script_is_taken(workspace: Path, name: str) -> None:
    french(workspace, '"' + name.encode("ascii", "backslashreplace").decode().replace("\\x", "\\u00") + '"')
    assert load_config(cwd=workspace).texts("fr").from_name == name


@pytest.mark.parametrize("char", ["\\u0007", "\\u0085", "\\u2028", "\\u009b", "\\u202e", "\\u2068"])
@pytest.mark.parametrize("key", ["from", "reply_to"])
def test_email_from_s_name_is_held_to_the_same_check(workspace: Path, char: str, key: str) -> None:
    # [languages.xx] from_name falls back to [email] from's name: the same characters are refused there.
    config = workspace / "digest.toml"
    text, found = re.subn(
        f"^{key} = .*$",
        lambda _: f'{key} = "Evil{char} <a@example.org>"',
        config.read_text(encoding="utf-8"),
        flags=re.M,
    )
    assert found == 1
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cwd=workspace)
    code = char.replace("\\u", "U+").upper()
    assert f"email.{key}: no control characters in a header value ({code} in 'Evil" in str(err.value), (
        err.value
    )


def test_a_bad_from_name_stops_the_build(workspace: Path, run: Run) -> None:
    french(workspace, '"Evil\\r\\nBcc: victim@example.org"')
    result = run("build", *MONTH)
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "languages: [languages.fr]: from_name: must be a single line (no line breaks)\n"
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_a_french_subscriber_s_message_has_the_french_from_name(
    workspace: Path, run: Run, smtp_env: Callable[..., None]
) -> None:
    french(workspace)
    assert run("build", *MONTH).exit_code == 0
    csv = workspace / "subscribers.csv"
    csv.write_text("email,name,lang\nann@example.org,Ann,fr\neve@example.org,Eve,en\n", encoding="utf-8")
    with Server(Handler()) as server:
        smtp_env(server.port)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert result.exit_code == 0, result.stderr
        raw = {rcpt: data for (rcpt, *_rest), data in server.handler.received}
    ann, eve = raw["ann@example.org"], raw["eve@example.org"]
    # On the wire: ASCII only, the French name as an RFC 2047 encoded word, on the one From line.
    from_line = next(line for line in ann.split(b"\r\n") if line.startswith(b"From: "))
    assert from_line.isascii() and b"=?utf-8?" in from_line and from_line.endswith(b" <news@example.org>")
    assert b"From: Co-operative News <news@example.org>\r\n" in eve
    for data, name in ((ann, FRENCH_NAME), (eve, "Co-operative News")):
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        (sender,) = msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (name, "news@example.org")
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert name in html  # the footer's "from ..." names the same sender
    assert (
        "Co-operative News"
        not in message_from_bytes(ann, policy=policy.default).get_body(("html",)).get_content()
    )  # type: ignore[union-attr]


def test_the_french_preview_message_has_the_french_from_name(workspace: Path, run: Run) -> None:
    french(workspace)
    assert run("build", *MONTH).exit_code == 0
    eml = (workspace / "out" / "2021-03" / "fr" / "digest.eml").read_bytes()
    msg = message_from_bytes(eml, policy=policy.default)
    assert msg["From"].addresses[0].display_name == FRENCH_NAME
    top = message_from_bytes(
        (workspace / "out" / "2021-03" / "digest.eml").read_bytes(), policy=policy.default
    )
    assert top["From"].addresses[0].display_name == "Co-operative News"

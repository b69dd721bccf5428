"""Per-recipient messages: valid MIME, the recipient's own values, list headers, no header injection."""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import check_url_template, greeting_fields
from digest.errors import ConfigError
from digest.message import HeaderError, Personaliser
from digest.tokens import check_unsubscribe_secret, check_unsubscribe_token, unsubscribe_token

G, U = "__G_test__", "__U_test__"
LONG = "x" * 70
HTML = (
    f"<html><body><p>{G}</p>\n"
    f'<p>{LONG} <a href="{U}">Unsubscribe</a> and more text after the link on the same long line</p>\n'
    ".a line that starts with a dot\n"
    "trailing spaces   \n"
    "Café crème, naïve façade — 100 % sûr\n"
    "</body></html>\n"
)
TEXT = f"{G}\n\n{LONG}{LONG}\n.\n..two dots\nUnsubscribe: {U}\n"


def maker(**kw: object) -> Personaliser:
    options: dict[str, object] = {
        "subject": "Café news: March",
        "html": HTML,
        "text": TEXT,
        "content_hash": "c0ffee" * 10 + "abcd",
        "sender": Address("Coop News", "news", "example.org"),
        "date": datetime(2021, 4, 1, 8, 0, tzinfo=UTC),
        "reply_to": Address("Team", "team", "example.org"),
        "list_id": "news.example.org",
        "list_name": "Coop News",
        "unsubscribe_url": "https://example.org/u?email={email}&token={token}",
        "unsubscribe_mailto": "unsubscribe@example.org",
        "secret": "s3cret",
        "placeholders": {"greeting": G, "unsubscribe_url": U},
    }
    options.update(kw)
    return Personaliser(**options)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects
    return msg


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.iter_parts()
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def test_a_message_carries_the_recipients_own_values_in_both_parts() -> None:
    out = maker().message("ann@example.org", "Ann & <Bo>", {})
    msg = parse(out.data)
    text, html = bodies(msg)
    link = f"https://example.org/u?email=ann%40example.org&token={unsubscribe_token('s3cret', 'ann@example.org')}"
    assert text == TEXT.replace(G, "Hello Ann & <Bo>,").replace(U, link)
    assert html == HTML.replace(G, "Hello Ann &amp; &lt;Bo&gt;,").replace(U, link.replace("&", "&amp;"))
    assert msg["To"] == '"Ann & <Bo>" <ann@example.org>'
    assert msg["Subject"] == "Café news: March"
    assert msg["List-Unsubscribe"] == f"<{link}>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Coop News <news.example.org>"
    assert msg["Message-ID"] == out.message_id
    assert msg["Date"] == "Thu, 01 Apr 2021 08:00:00 +0000"
    assert msg["Reply-To"] == "Team <team@example.org>"
    assert msg["Content-Language"] is None  # no language given: none said


def test_the_digest_s_language_is_said_as_bcp_47() -> None:
    msg = parse(maker(language="pt_BR").message("ann@example.org", "Ann").data)
    assert msg["Content-Language"] == "pt-BR"
    with pytest.raises(ValueError):  # a code is checked by the config; a line break still cannot pass
        maker(language="fr\r\nBcc: eve@example.org")


def test_the_wire_form_is_crlf_seven_bit_dot_stuffed_and_terminated() -> None:
    out = maker().message("ann@example.org", "Ann")
    assert out.wire.endswith(b"\r\n.\r\n")
    assert b"\n" not in out.wire.replace(b"\r\n", b"")
    lines = out.wire.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)  # RFC 5322's hard limit
    long = [line for line in lines if len(line) > 78]
    assert all(line.startswith(b"List-Unsubscribe: <https://") for line in long), long  # a URL is not folded
    body = out.wire.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert all(len(line) <= 77 for line in body)  # 76 of quoted-printable, maybe one more "." of stuffing
    assert max(out.wire) < 128
    assert b"\r\n..a line that starts with a dot" in out.wire and b"\r\n.a line" not in out.wire
    assert b"\r\n.a line that starts with a dot" in out.data


def test_the_pieces_encode_exactly_like_the_whole_part() -> None:
    """Encoding only the lines with a placeholder gives the same bytes as encoding the whole filled part."""
    m = maker()
    out = m.message("ann@example.org", "Ann")
    link, _ = m.unsubscribe_for("ann@example.org")
    whole_text = TEXT.replace("\n", "\r\n").replace(G, "Hello Ann,").replace(U, link)
    whole_html = HTML.replace("\n", "\r\n").replace(G, "Hello Ann,").replace(U, link.replace("&", "&amp;"))
    stuff = re.compile(rb"(?m)^\.")
    assert stuff.sub(b"..", binascii.b2a_qp(whole_text.encode(), istext=True)) in out.wire
    assert stuff.sub(b"..", binascii.b2a_qp(whole_html.encode(), istext=True)) in out.wire


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=120),
            st.sampled_from([G, U, f"{LONG}{G}{LONG}", f".{U}", f"{U} {G}  "]),
        ),
        max_size=12,
    ),
    # (Names with quotes, brackets and commas are covered above; here any letters, spaces and symbols.)
    name=st.text(
        alphabet=st.characters(
            blacklist_categories=["Cs", "Cc", "Zl", "Zp"], blacklist_characters='"\\<>,;:@()[]'
        ),
        max_size=40,
    ),
)
def test_any_part_and_name_decode_back_to_the_filled_part(lines: list[str], name: str) -> None:
    text = "\n".join(lines) + "\n"
    m = maker(text=text, html=text)
    out = m.message("ann@example.org", name)
    msg = parse(out.data)
    got_text, _ = bodies(msg)
    link, _ = m.unsubscribe_for("ann@example.org")
    greeting = m.greeting_for(name, {})
    assert got_text == text.replace(G, greeting).replace(U, link)
    # Decoded as RFC 2047 says (whitespace between two encoded words is dropped). Python's own address
    # parser keeps that whitespace, a bug in the email package, so the raw header is decoded here.
    raw = str(message_from_bytes(out.data, policy=policy.compat32)["To"]).replace("\r\n", "")
    decoded = str(make_header(decode_header(raw)))
    assert parseaddr(decoded) == (" ".join(name.split()), "ann@example.org")


def test_a_long_non_ascii_name_is_encoded_and_folded() -> None:
    name = "Zoë Ñúñez-O'Brien de la Fuente y Castillo-Montenegro Åsa"
    out = maker().message("zoe@example.org", name)
    assert max(out.wire) < 128
    msg = parse(out.data)
    assert msg["To"].addresses[0].display_name == name
    assert msg["To"].addresses[0].addr_spec == "zoe@example.org"


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("ann@example.org", "Ann\r\nBcc: everyone@example.org"),
        ("ann@example.org", "Ann\nBcc: everyone@example.org"),
        ("ann@example.org\r\nBcc: everyone@example.org", ""),
        ("ann@example.org", "Ann\x00"),
    ],
)
def test_a_line_break_in_a_recipient_is_refused(email: str, name: str) -> None:
    with pytest.raises(HeaderError, match="To: line breaks and control characters are not allowed"):
        maker().message(email, name)


@pytest.mark.parametrize("field", ["subject", "list_name", "list_id", "greeting_fallback"])
def test_a_line_break_in_a_digest_header_is_refused(field: str) -> None:
    with pytest.raises(HeaderError, match="line breaks and control characters are not allowed"):
        maker(**{field: "News\r\nBcc: everyone@example.org"})


def test_the_greeting_falls_back_when_a_column_it_uses_is_empty() -> None:
    m = maker(greeting="Dear {name} from {city},", greeting_fallback="Dear reader,")
    assert m.greeting_for("Ann", {"city": "Lyon"}) == "Dear Ann from Lyon,"
    assert m.greeting_for("Ann", {"city": " "}) == "Dear reader,"
    assert m.greeting_for("", {"city": "Lyon"}) == "Dear reader,"
    assert m.greeting_for("Ann\tLee", {"city": "Lyon"}) == "Dear Ann Lee from Lyon,"


def test_the_greeting_s_columns_are_matched_case_aside() -> None:
    """The list's columns are read in lower case; a greeting may spell them as the header does."""
    m = maker(greeting="Dear {Name} from {CITY},", greeting_fallback="Dear reader,")
    assert m.greeting_for("Ann", {"city": "Lyon"}) == "Dear Ann from Lyon,"
    assert m.greeting_for("Ann", {"city": ""}) == "Dear reader,"


def test_message_ids_are_unique_per_recipient_and_stable() -> None:
    m = maker()
    a, b = m.message_id("ann@example.org"), m.message_id("bob@example.org")
    assert a != b
    assert a == m.message_id("ANN@example.org") == maker().message_id("ann@example.org")
    assert re.fullmatch(r"<digest\.c0ffeec0ffeec0ff\.[0-9a-f]{24}@example\.org>", a)
    assert "ann" not in a  # the address is not readable in it


def test_unsubscribe_tokens_are_hmacs_of_the_address() -> None:
    token = unsubscribe_token("s3cret", "Ann@Example.org")
    assert check_unsubscribe_token("s3cret", "ann@example.org", token)
    assert not check_unsubscribe_token("other", "ann@example.org", token)
    assert not check_unsubscribe_token("s3cret", "bob@example.org", token)


@pytest.mark.parametrize(
    ("secret", "email", "token"),
    [
        ("s3cret", "ann@example.org", ""),  # the empty token
        ("", "ann@example.org", "x"),  # no secret: nothing is valid
        ("s3cret", "ann@example.org", "garbage"),
        ("s3cret", "ann@example.org", "0" * 32),  # the right length, the wrong value
        ("s3cret", "ann@example.org", "é" * 32),  # non-ASCII: compare_digest would raise on str
        ("s3cret", "ann@example.org", "\udcff" * 32),  # a lone surrogate, as a bad URL decodes
        ("s3cret", "\udcff@example.org", "0" * 32),
        ("s3cret", None, "0" * 32),
        ("s3cret", "ann@example.org", None),
        ("s3cret", "ann@example.org", b"0" * 32),
    ],
)
def test_a_bad_token_is_refused_and_never_raises(secret: str, email: object, token: object) -> None:
    assert check_unsubscribe_token(secret, email, token) is False  # type: ignore[arg-type]


def test_a_token_right_only_in_its_first_characters_is_refused() -> None:
    token = unsubscribe_token("s", "ann@example.org")
    wrong_end = token[:8] + ("0" if token[8] != "0" else "1") + token[9:]
    assert not check_unsubscribe_token("s", "ann@example.org", wrong_end)
    assert not check_unsubscribe_token("s", "ann@example.org", token[:-1])
    assert not check_unsubscribe_token("s", "ann@example.org", token + "0")


def test_the_right_token_with_an_empty_secret_is_still_refused() -> None:
    assert not check_unsubscribe_token("", "ann@example.org", unsubscribe_token("", "ann@example.org"))
    assert check_unsubscribe_token("s", "ann@example.org", unsubscribe_token("s", "ann@example.org")) is True


def test_a_name_of_ten_thousand_letters_is_folded_under_998_characters() -> None:
    for name in ("N" * 10_000, "Zoë " * 2500, "a " * 5000):
        data = maker().message("ann@example.org", name).data
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        to = parse(data)["To"].addresses[0]
        assert to.addr_spec == "ann@example.org"
        assert to.display_name.replace(" ", "") == name.replace(" ", "")


def test_only_a_mailto_when_there_is_no_url() -> None:
    msg = parse(maker(unsubscribe_url="").message("ann@example.org").data)
    assert msg["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None  # one-click needs an https URL (RFC 8058)
    assert "Unsubscribe: mailto:unsubscribe@example.org?subject=unsubscribe" in bodies(msg)[0]


def test_no_unsubscribe_at_all_or_a_token_without_secret_is_refused() -> None:
    with pytest.raises(HeaderError, match="no unsubscribe address"):
        maker(unsubscribe_url="", unsubscribe_mailto="")
    with pytest.raises(HeaderError, match="DIGEST_UNSUBSCRIBE_SECRET"):
        maker(secret="")


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("https://x.org/u?e={mail}", "unknown field {mail}"),
        ("https://x.org/u?e={email} &t={token}", "must be percent-encoded"),
        ("https://x.org/u?e={email", "bad template"),
    ],
)
def test_bad_url_templates(template: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_url_template(template)


def test_greeting_fields() -> None:
    assert greeting_fields("Hello {name} from {City},") == {"name", "city"}
    with pytest.raises(ValueError, match="plain column names"):
        greeting_fields("Hello {name.__class__},")
    with pytest.raises(ValueError, match="plain column names"):
        greeting_fields("Hello {name!r},")


def test_bad_url_template_without_token_is_refused_for_the_right_reason() -> None:
    with pytest.raises(ValueError, match=re.escape("must contain {token}")):
        check_url_template("https://x.org/u?e={email}")


@pytest.mark.parametrize(
    ("secret", "size"), [("", None), ("x" * 31, 31), ("é" * 15 + "x", 31), ("\udc80" * 10, 30)]
)
def test_a_secret_under_32_bytes_is_refused_with_how_to_make_one(secret: str, size: int | None) -> None:
    with pytest.raises(ConfigError) as err:
        check_unsubscribe_secret(secret)
    text = str(err.value)
    assert text.startswith(
        f"DIGEST_UNSUBSCRIBE_SECRET {'is not set' if size is None else f'is {size} bytes long'};"
    )
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in text


@pytest.mark.parametrize("secret", ["x" * 32, "é" * 16, "k" * 200])
def test_a_secret_of_32_bytes_or_more_is_accepted(secret: str) -> None:
    assert check_unsubscribe_secret(secret) == secret


def test_an_unsigned_message_has_no_dkim_header() -> None:
    out = maker().message("ann@example.org", "Ann")
    assert out.wire.startswith(b"From: ")
    assert b"DKIM-Signature" not in out.wire


def test_the_token_carries_the_address_and_only_its_signature_proves_it() -> None:
    from digest.tokens import address_from_token

    secret = "s" * 40
    token = unsubscribe_token(secret, "Ann@Example.org")
    assert "@" not in token and "ann" not in token.lower()  # no address in the link for filters or logs
    assert address_from_token(secret, token) == "ann@example.org"
    assert check_unsubscribe_token(secret, "ann@example.org", token)
    assert not check_unsubscribe_token(secret, "bob@example.org", token)
    who, _, mac = token.rpartition(".")
    forged = unsubscribe_token(secret, "bob@example.org").rpartition(".")[0] + "." + mac
    for bad in (forged, who + "." + "0" * 32, who, "." + mac, "", "a.b.c", "é.é", "\udcff.x"):
        assert address_from_token(secret, bad) is None, bad
    assert address_from_token("t" * 40, token) is None  # another workspace's secret


def test_a_token_only_url_has_no_address_in_it() -> None:
    m = maker(unsubscribe_url="https://example.org/unsubscribe?u={token}", secret="s" * 40)
    link, _header = m.unsubscribe_for("ann@example.org")
    assert link.startswith("https://example.org/unsubscribe?u=") and "ann" not in link and "%40" not in link

"""DKIM: every signature digest writes is verified by dkimpy (written apart from digest.dkim) against a key
made by the test and served by a DNS lookup function the test provides; on the bytes a real SMTP server got."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import dkim
import pytest
from click.testing import Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from smtpserver import MONTH, PEOPLE, Handler, Server, subscribers

from digest.config import load_config
from digest.dkim import HEADER_LIST, KEYGEN, Signer, relaxed, signer_from_config
from digest.errors import ConfigError
from digest.message import Personaliser, personaliser

SECRET = "unsubscribe-test-secret-0123456789abcdef"
Run = Callable[..., Result]
G, U = "__G__", "__U__"
# A 512-bit key (made once with `openssl genrsa 512`; the cryptography package refuses to make one): too short.
SHORT_KEY = """\
-----BEGIN RSA PRIVATE KEY-----
MIIBOwIBAAJBAME3hfq09XEzUi9qCJReSNE5TR/7lVOTlq/A6mNi9sWuYhq/avXV
eTM9Qfn6hpDHDVhPgL5GxH9qmlEjNDpxXQUCAwEAAQJAC93WG6yrelVVkdXoSvxz
am4jf3hbFnP1CDxH6Oy2DTPqHyhoCHp4alKbn3r/mKf7g0ocdY6DP4r65cUGR5N6
oQIhAPSoq/P8I1KnSPRBmj7wD5h6gtwmt2SoxMgpszQsBEW5AiEAyixl0VyhHKNL
gYz1rVmixmMynRuqCUWemxcYvAbvt60CIQDGcU1Pz9JCx0cIP3HB3Ot5bN1ZfdnA
vpcmF5SwG4e3mQIgCgtao6QufPW/8pfGPO6PH7wd76BIOl2zG5FyMSVHE6ECIQDc
YKnJau1I5+HGxS6M/Mpc/tKt9hX3WmjqLmcM12hDjw==
-----END RSA PRIVATE KEY-----
"""


def pem(key: Any, *, password: bytes | None = None, pkcs8: bool = False) -> str:
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8 or password
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> Signer:
    return Signer("example.org", "sel2021", key)


def dns_for(*signers: Signer) -> Callable[..., bytes | None]:
    """A DNS TXT lookup that knows only these selectors (dkimpy asks for bytes names with a final dot)."""
    records = {f"{s.selector}._domainkey.{s.domain}.".encode(): s.dns_record().encode() for s in signers}

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return lookup


def verify(data: bytes, *signers: Signer) -> bool:
    return bool(dkim.verify(data, dnsfunc=dns_for(*signers)))


def maker(signer: Signer | None, **kw: Any) -> Personaliser:
    options: dict[str, Any] = {
        "subject": "Café news: March — a subject long enough to be folded by the email package, surely",
        "html": f'<p>{G}</p>\n<p><a href="{U}">Unsubscribe</a></p>\n.leading dot\ntrailing   \n',
        "text": f"{G}\n\n.\n..two\n{'word ' * 40}\nUnsubscribe: {U}\n",
        "content_hash": "c0ffee" * 10 + "abcd",
        "sender": Address("Coop News", "news", "example.org"),
        "date": datetime(2021, 4, 1, 8, 0, tzinfo=UTC),
        "list_id": "news.example.org",
        "list_name": "Coop News",
        "unsubscribe_url": "https://example.org/u?email={email}&token={token}",
        "unsubscribe_mailto": "unsubscribe@example.org",
        "secret": SECRET,
        "placeholders": {"greeting": G, "unsubscribe_url": U},
        "signer": signer,
    }
    options.update(kw)
    return Personaliser(**options)


def tags(data: bytes) -> dict[str, str]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", data, re.S | re.M)
    assert header is not None
    value = re.sub(r"\s+", "", header[1].decode())
    return dict(t.split("=", 1) for t in value.split(";") if t)


# ---- the signature itself ----


@pytest.mark.parametrize(
    "name",
    ["Ann", "", "Zoë Ñúñez-O'Brien de la Fuente y Castillo-Montenegro Åsa", '"Ann, Lee" <x>', "x" * 300],
)
def test_a_signed_message_verifies_with_dkimpy(signer: Signer, name: str) -> None:
    out = maker(signer).message("ann@example.org", name)
    assert out.data.startswith(b"DKIM-Signature:")
    assert out.data.count(b"DKIM-Signature:") == 1
    assert verify(out.data, signer)
    assert all(len(line) <= 998 for line in out.wire.split(b"\r\n"))
    assert (
        out.wire.endswith(b"\r\n.\r\n") and b"\r\n..leading dot" in out.wire
    )  # still dot-stuffed on the wire


def test_the_signature_covers_what_rfc_8058_and_the_issue_name(signer: Signer) -> None:
    out = maker(signer).message("ann@example.org", "Ann")
    t = tags(out.data)
    assert (t["v"], t["a"], t["c"], t["d"], t["s"]) == (
        "1",
        "rsa-sha256",
        "relaxed/simple",
        "example.org",
        "sel2021",
    )
    assert t["t"] == str(int(datetime(2021, 4, 1, 8, 0, tzinfo=UTC).timestamp()))
    signed = t["h"].lower().split(":")
    for name in (
        "from",
        "subject",
        "date",
        "message-id",
        "to",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ):
        assert name in signed
    assert signed.count("from") == 2 and signed.count("list-unsubscribe") == 2  # over-signed
    assert t["h"] == HEADER_LIST


def test_the_signature_header_is_folded_into_short_lines(signer: Signer) -> None:
    data = maker(signer).message("ann@example.org", "Ann").data
    header = data.split(b"\r\nFrom: ", 1)[0].split(b"\r\n")
    assert len(header) > 4 and all(len(line) <= 78 for line in header), header


def test_the_message_is_the_unsigned_one_with_one_header_more(signer: Signer) -> None:
    signed = maker(signer).message("ann@example.org", "Ann").wire
    plain = maker(None).message("ann@example.org", "Ann").wire
    head, rest = signed.split(b"\r\nFrom: ", 1)
    assert head.startswith(b"DKIM-Signature:")
    assert b"From: " + rest == plain


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: ", b"Subject: Re: "),
        (b"To: Ann <ann@", b"To: Ann <bob@"),
        (b"Hello Ann,", b"Hello Bob,"),
        (b"email=3Dann%40example.org", b"email=3Dbob%40example.org"),  # the text part's link
        (b"List-Unsubscribe: <https://example.org", b"List-Unsubscribe: <https://evil.example"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: X=Y"),
        (b"List-Id: Coop", b"List-Id: Scam"),
        (b"Date: Thu", b"Date: Fri"),
        (b"Message-ID: <digest.", b"Message-ID: <other."),
        (b"\r\nFrom: ", b"\r\nFrom: x@evil.example\r\nFrom: "),  # a second From
        (b"Subject: ", b"Reply-To: x@evil.example\r\nSubject: "),  # an added Reply-To
        (b"List-Id: ", b"List-Unsubscribe: <https://evil.example/>\r\nList-Id: "),  # a second one
        (b"MIME-Version: 1.0", b"MIME-Version: 2.0"),
        (b"boundary=", b"charset=x; boundary="),
        (b"\r\n.leading dot", b"\r\n..leading dot"),
    ],
)
def test_a_changed_message_fails_verification(signer: Signer, old: bytes, new: bytes) -> None:
    data = maker(signer).message("ann@example.org", "Ann").data
    assert old in data
    assert not verify(data.replace(old, new, 1), signer)


def test_relaxed_changes_on_the_way_still_verify(signer: Signer) -> None:
    """What relays do to headers (refolding, spaces, the name's case) must not break the signature."""
    data = maker(signer).message("ann@example.org", "Ann").data
    for old, new in [
        (b"Subject: ", b"subject:    "),
        (b"List-Id: Coop News", b"List-Id:\r\n\tCoop  News"),
        (b"MIME-Version: 1.0", b"MIME-Version: 1.0   "),
    ]:
        data = data.replace(old, new, 1)
    assert verify(data, signer)
    # A Received: header added on top, as every relay does: not signed, no harm.
    assert verify(b"Received: from relay by mx; Thu, 1 Apr 2021 08:00:01 +0000\r\n" + data, signer)


def test_another_key_under_the_same_selector_fails(signer: Signer) -> None:
    other = Signer("example.org", "sel2021", rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - a test key
    data = maker(signer).message("ann@example.org", "Ann").data
    assert not verify(data, other)
    assert verify(maker(other).message("ann@example.org", "Ann").data, other)


def test_a_message_without_reply_to_or_mailto_verifies(signer: Signer) -> None:
    m = maker(signer, reply_to=Address("Team", "team", "example.org"), unsubscribe_mailto="")
    assert verify(m.message("ann@example.org", "Ann").data, signer)
    m = maker(signer, unsubscribe_url="", secret="")
    data = m.message("ann@example.org", "Ann").data
    assert b"List-Unsubscribe-Post" not in data and verify(data, signer)


def test_relaxed_header_form() -> None:
    assert relaxed(b"Subject", b"  a \t b\r\n\t c  \r\n") == b"subject:a b c\r\n"
    assert relaxed(b"X", b"") == b"x:\r\n"


# ---- the config: a bad key or a half set-up is a ConfigError before anything is sent ----


def cfg(tmp_path: Path, toml: str = "", **env: str) -> Any:
    (tmp_path / "digest.toml").write_text(toml, encoding="utf-8")
    return load_config(tmp_path / "digest.toml", environ=env)


def test_no_dkim_settings_means_no_signer(tmp_path: Path) -> None:
    assert signer_from_config(cfg(tmp_path)) is None


def test_a_key_in_the_environment_makes_a_signer(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    got = signer_from_config(
        cfg(tmp_path, '[dkim]\ndomain = "Example.ORG"\nselector = "s1"\n', DIGEST_DKIM_KEY=pem(key))
    )
    assert got is not None and (got.domain, got.selector) == ("example.org", "s1")
    assert got.dns_record() == Signer("example.org", "s1", key).dns_record()


def test_a_key_with_escaped_line_ends_as_ci_secrets_hold_it(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    flat = pem(key, pkcs8=True).replace("\n", "\\n")
    got = signer_from_config(
        cfg(tmp_path, DIGEST_DKIM_DOMAIN="example.org", DIGEST_DKIM_SELECTOR="s", DIGEST_DKIM_KEY=flat)
    )
    assert got is not None and got.key.private_numbers() == key.private_numbers()


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[dkim]\ndomain = "example.org"\n', {}, r"\[dkim\] selector is not set"),
        ('[dkim]\nselector = "s"\n', {}, r"\[dkim\] domain is not set"),
        ("", {"DIGEST_DKIM_KEY": "x"}, r"\[dkim\] domain is not set"),
        (
            '[dkim]\ndomain = "example.org"\nselector = "s"\n',
            {},
            "there is no private key: set DIGEST_DKIM_KEY",
        ),
        (
            '[dkim]\ndomain = "exa mple.org"\nselector = "s"\n',
            {"DIGEST_DKIM_KEY": "x"},
            r"\[dkim\] domain: 'exa mple.org' is not a DNS name",
        ),
        (
            '[dkim]\ndomain = "example.org"\nselector = "-s"\n',
            {"DIGEST_DKIM_KEY": "x"},
            r"\[dkim\] selector: '-s' is not a DNS name",
        ),
        (
            '[dkim]\ndomain = "example.org"\nselector = "s"\n',
            {"DIGEST_DKIM_KEY": "not a key"},
            "DIGEST_DKIM_KEY: not a PEM private key",
        ),
    ],
)
def test_a_half_set_up_or_bad_dkim_is_a_config_error(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        signer_from_config(cfg(tmp_path, toml, **env))


def test_unusable_keys_are_refused_with_how_to_make_one(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    base = {"DIGEST_DKIM_DOMAIN": "example.org", "DIGEST_DKIM_SELECTOR": "s"}
    cases = [
        (pem(key, password=b"pw"), "encrypted"),
        (pem(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
        (SHORT_KEY, "512-bit key is too short"),
        (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            "not a PEM private key",
        ),
    ]
    for text, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            signer_from_config(cfg(tmp_path, **base, DIGEST_DKIM_KEY=text))
        assert "DIGEST_DKIM_KEY" in str(err.value)
        if "encrypted" not in message:
            assert KEYGEN in str(err.value)


def test_a_key_file_outside_the_repository_is_read(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    ws, keys = tmp_path / "ws", tmp_path / "keys"
    ws.mkdir()
    keys.mkdir()
    (keys / "dkim.pem").write_text(pem(key))
    got = signer_from_config(
        cfg(ws, '[dkim]\ndomain = "example.org"\nselector = "s"\nkey_file = "../keys/dkim.pem"\n')
    )
    assert got is not None and got.key.private_numbers() == key.private_numbers()


def test_the_key_in_the_environment_wins_over_the_key_file(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    ws, keys = tmp_path / "ws", tmp_path / "keys"
    ws.mkdir()
    keys.mkdir()
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - a test key
    (keys / "dkim.pem").write_text(pem(other))
    toml = '[dkim]\ndomain = "example.org"\nselector = "s"\nkey_file = "../keys/dkim.pem"\n'
    got = signer_from_config(cfg(ws, toml, DIGEST_DKIM_KEY=pem(key)))
    assert got is not None and got.key.private_numbers() == key.private_numbers()


def test_a_key_file_inside_a_git_repository_is_refused(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "dkim.pem").write_text(pem(key))
    with pytest.raises(
        ConfigError, match=rf"key_file .*dkim.pem is inside the git repository {re.escape(str(tmp_path))}"
    ):
        signer_from_config(
            cfg(tmp_path, '[dkim]\ndomain = "example.org"\nselector = "s"\nkey_file = "secrets/dkim.pem"\n')
        )


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[dkim\] key_file .*nowhere.pem: cannot read: No such file"):
        signer_from_config(
            cfg(
                tmp_path,
                '[dkim]\ndomain = "example.org"\nselector = "s"\nkey_file = "/nonexistent/nowhere.pem"\n',
            )
        )


def test_the_build_preview_is_never_signed_and_needs_no_key(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    from digest.outdir import Parts

    config = cfg(
        tmp_path, DIGEST_DKIM_DOMAIN="example.org", DIGEST_DKIM_SELECTOR="s", DIGEST_DKIM_KEY="broken"
    )
    parts = Parts(
        subject="S",
        html=f"<p>{G}</p>\n",
        text=f"{G}\n",
        content_hash="ab" * 32,
        placeholders={"greeting": G, "unsubscribe_url": U},
    )
    now = datetime(2021, 4, 1, tzinfo=UTC)
    assert personaliser(config, parts, now=now, preview=True).signing is None
    with pytest.raises(ConfigError, match="DIGEST_DKIM_KEY: not a PEM private key"):
        personaliser(config, parts, now=now)


@pytest.mark.parametrize(
    ("domain", "sender", "warned"),
    [
        ("example.org", "news@example.org", False),
        ("example.org", "news@lists.example.org", False),  # From below the signing domain
        ("mail.example.org", "news@example.org", False),  # signing domain below From's
        ("mail.example.org", "news@lists.example.org", False),  # same organisation (relaxed alignment)
        ("EXAMPLE.org.", "news@example.org", False),
        ("example.net", "news@example.org", True),
        ("mailer.example", "news@example.org", True),
        ("", "news@elsewhere.org", False),  # no DKIM: nothing to align
    ],
)
def test_a_signing_domain_dmarc_cannot_align_with_from_is_warned(
    tmp_path: Path, domain: str, sender: str, warned: bool
) -> None:
    from digest.dkim import alignment_warning

    toml = f'[email]\nfrom = "News <{sender}>"\n' + (f'[dkim]\ndomain = "{domain}"\n' if domain else "")
    said = alignment_warning(cfg(tmp_path, toml))
    assert (said is not None) == warned
    if said:
        assert domain in said and sender.split("@")[1] in said and "DMARC" in said


def test_a_send_says_the_misalignment_before_it_sends(
    ws: Path, run: Run, smtp_env: Callable[..., None], dkim_env: dict[str, str]
) -> None:
    csv = subscribers(ws, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(server.port, **{**dkim_env, "DIGEST_DKIM_DOMAIN": "example.net"})
        result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert "Warning: [dkim] domain 'example.net' is not the From address's domain" in result.stderr
        smtp_env(server.port, **dkim_env)
        result = run("send", *MONTH, "--subscribers", str(csv), "--dry-run")
        assert result.exit_code == 0 and "DMARC" not in result.stderr


# ---- a real send ----


@pytest.fixture
def dkim_env(key: rsa.RSAPrivateKey) -> Iterator[dict[str, str]]:
    yield {
        "DIGEST_UNSUBSCRIBE_SECRET": SECRET,
        "DIGEST_DKIM_DOMAIN": "example.org",
        "DIGEST_DKIM_SELECTOR": "digest2021",
        "DIGEST_DKIM_KEY": pem(key),
    }


def test_every_message_a_send_delivers_verifies(
    ws: Path, run: Run, smtp_env: Callable[..., None], dkim_env: dict[str, str], key: rsa.RSAPrivateKey
) -> None:
    csv = subscribers(ws, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(server.port, **dkim_env)
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes", "--connections", "2")
        assert result.exit_code == 0, result.stderr
        received = [raw for _, raw in server.handler.received]
    assert len(received) == len(PEOPLE)
    published = Signer("example.org", "digest2021", key)
    for raw in received:
        assert raw.count(b"DKIM-Signature:") == 1
        assert verify(raw, published)
        assert not verify(raw.replace(b"Hello", b"Hullo", 1), published)
    assert b"DKIM-Signature" not in (ws / "out" / "2021-03" / "digest.eml").read_bytes()


def test_a_bad_key_stops_the_send_before_anything_goes(
    ws: Path, run: Run, smtp_env: Callable[..., None], dkim_env: dict[str, str]
) -> None:
    csv = subscribers(ws, PEOPLE)
    with Server(Handler()) as server:
        smtp_env(
            server.port,
            **{
                **dkim_env,
                "DIGEST_DKIM_KEY": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            },
        )
        result = run("send", *MONTH, "--subscribers", str(csv), "--yes")
        assert server.handler.received == []
        assert server.handler.connections == 0
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: environment variable DIGEST_DKIM_KEY: not a PEM private key")

"""The unsubscribe endpoint: a small WSGI application that receives the links `digest send` signs.

RFC 8058: a POST with `List-Unsubscribe=One-Click` (what Gmail or Yahoo send when the reader presses their
Unsubscribe button) suppresses the address at once and answers 200. A GET (the reader clicking the footer
link) only shows a page with one button, which POSTs the same: mail scanners prefetch links, so a GET never
unsubscribes by itself. It answers on any path, so the configured URL works behind a proxy that moves it.
Its pages are in the reader's language: the one of the workspace's languages their Accept-Language prefers,
in the digest's catalogs (the workspace's in front of the packaged ones).

    gunicorn 'digest.unsubscribe:app'      # the workspace from DIGEST_CONFIG, or ./digest.toml
    digest unsubscribe serve                # the same, locally, with wsgiref
"""

from __future__ import annotations

import html
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from babel.core import negotiate_locale

from digest.config import Config, load_config
from digest.errors import ConfigError, DigestError
from digest.i18n import packaged, translations
from digest.suppress import Suppressions, normalise
from digest.tokens import address_from_token, check_unsubscribe_secret, check_unsubscribe_token
from digest.words import lang_tag

if TYPE_CHECKING:
    from babel.support import NullTranslations

MAX_BODY = 16 * 1024  # a one-click body is 26 bytes; the page's form a few more
ONE_CLICK = ("List-Unsubscribe", "One-Click")
StartResponse = Callable[..., Any]
# One entry of an Accept-Language header, stripped: a language range ("fr", "fr-CH", "*"), maybe with a
# q-value. No optional space at either end: `\s*` on both sides of an optional group made a run of spaces
# cost quadratic time (a long header held the server for seconds).
LANGUAGE_RANGE = re.compile(
    r"([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)"  # the range
    r"(?:[ \t]*;[ \t]*[qQ][ \t]*=[ \t]*([0-9.]{1,5}))?"  # its q-value
)
# What of the header is read: a browser sends a few entries; more is not a reader's preference.
MAX_LANGUAGES = 32
Environ = Mapping[str, Any]
HEADERS = [
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),  # the URL carries the token
    ("X-Robots-Tag", "noindex"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
]


@dataclass(frozen=True)
class Link:
    """Where the address and the token are in a request, as the configured URL template puts them."""

    query: Mapping[str, re.Pattern[str]]  # query parameter -> pattern of its value
    path: re.Pattern[str] | None  # pattern of the end of the path, if a field is in the path

    @classmethod
    def of(cls, template: str) -> Link:
        """Read an unsubscribe_url template (https://host/u?email={email}&token={token}, or in the path)."""
        parts = urlsplit(template)
        query = {}
        for name, value in parse_qs(parts.query, keep_blank_values=True).items():
            if "{" in value[0]:
                query[name] = re.compile(_pattern(value[0], ".") + r"\Z", re.DOTALL)
        path = None
        first = min((parts.path.find(f) for f in ("{email}", "{token}") if f in parts.path), default=-1)
        if first >= 0:
            # From the slash before the first field to the end: a proxy may change what comes before.
            tail = parts.path[parts.path.rfind("/", 0, first) :]
            path = re.compile(_pattern(tail, "[^/]") + r"\Z")
        return cls(query, path)

    def fields(self, environ: Environ) -> dict[str, str]:
        """{"email": ..., "token": ...} as far as this request has them."""
        found: dict[str, str] = {}
        query = parse_qs(_text(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        for name, pattern in self.query.items():
            m = pattern.match(query.get(name, [""])[0])
            if m:
                found.update(m.groupdict())
        if self.path is not None:
            path = _text(environ.get("SCRIPT_NAME", "")) + _text(environ.get("PATH_INFO", ""))
            m = self.path.search(path)
            if m:
                found.update(m.groupdict())
        return found


@dataclass(frozen=True)
class Reader:
    """Who a page is for: the language negotiated, its words, and the digest's title in it."""

    lang: str
    title: str
    gettext: Callable[[str], str]

    def words(self, message: str, **values: str) -> str:
        """A string in the reader's language, formatted as the templates' are (`%(name)s`, and `%%` for a
        percent sign, which the catalogs' checks ask of every translation)."""
        return self.gettext(message) % values

    @property
    def tag(self) -> str:
        """The language as HTML and HTTP write it (pt-BR, where the workspace says pt_BR)."""
        return lang_tag(self.lang)


def negotiate(header: str, available: Sequence[str], default: str) -> str:
    """The language of `available` an Accept-Language header prefers most (by q-value; fr-CH finds fr,
    en finds en_US, pt finds pt_BR), or `default` when it names none of them or is not there."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",", MAX_LANGUAGES)[:MAX_LANGUAGES]):
        m = LANGUAGE_RANGE.fullmatch(part.strip(" \t"))
        if not m or m[1] == "*":  # "*" is any language: the default is one
            continue
        try:
            q = 1.0 if m[2] is None else float(m[2])
        except ValueError:
            continue
        if 0 < q <= 1:  # q=0 is "not this one"
            ranked.append((-q, n, m[1].replace("-", "_")))
    by_lower = {code.lower(): code for code in available}
    for _, _, tag in sorted(ranked):
        found = negotiate_locale([tag], available)
        if not found:  # "pt" finds a workspace's pt_BR (Babel matches only the other way round)
            base = tag.split("_")[0].lower()
            found = next((code for code in available if code.split("_")[0].lower() == base), None)
        if found:  # Babel answers in the header's spelling ("FR"): the workspace's is the one to use
            return by_lower[found.lower()]
    return default


def _pattern(text: str, char: str) -> str:
    # {email} and {token} become named groups; everything else must match literally.
    out = []
    for piece in re.split(r"(\{email\}|\{token\})", text):
        if piece in ("{email}", "{token}"):
            out.append(f"(?P<{piece[1:-1]}>{char}+)")
        else:
            out.append(re.escape(piece))
    return "".join(out)


def _valid(email: str) -> bool:
    # A token we signed for an address the list would refuse (we never send to one): not a link of ours.
    try:
        normalise(email)
    except DigestError:
        return False
    return True


def _text(value: object) -> str:
    # WSGI hands over bytes as latin-1 text (PEP 3333); the URL's bytes are UTF-8.
    raw = value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
    return raw.decode("utf-8", "replace")


class Endpoint:
    """The WSGI application: a callable (environ, start_response) -> body."""

    def __init__(
        self,
        *,
        template: str,
        secret: str,
        suppressions: Path,
        title: str,
        language: str = "en",
        titles: Mapping[str, str] | None = None,
        locale: Path | None = None,
    ):
        self.link = Link.of(template)
        self.secret = secret
        self.suppressions = suppressions
        self.title = title
        self.language = language
        # The languages the workspace sends in, its own first, each with the digest's title in it.
        self.titles = {language: title, **(titles or {})}
        self.locale = locale  # the workspace's catalogs, in front of the packaged ones

    def reader(self, environ: Environ) -> Reader:
        """The language of a request's pages (its Accept-Language among the workspace's), with its words."""
        lang = negotiate(_text(environ.get("HTTP_ACCEPT_LANGUAGE", "")), list(self.titles), self.language)
        try:
            words: NullTranslations = translations(lang, self.locale)
        except DigestError as err:  # a catalog edited into a mistake while serving: the packaged words
            print(f"digest unsubscribe: {err}", file=environ.get("wsgi.errors", sys.stderr))
            words = packaged(lang)
        return Reader(lang, self.titles[lang], words.gettext)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        reader = self.reader(environ)
        _ = reader.words
        try:
            status, body = self.respond(environ, reader)
        except DigestError as err:  # the suppression list cannot be written: say so, keep the details here
            print(f"digest unsubscribe: {err}", file=environ.get("wsgi.errors", sys.stderr))
            status, body = (
                "503 Service Unavailable",
                self.page(
                    reader, _("Please try again later"), _("Your request could not be recorded just now.")
                ),
            )
        headers = [
            *HEADERS,
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Content-Language", reader.tag),
            ("Vary", "Accept-Language"),  # caches keep one page per language
        ]
        if status.startswith("405"):
            headers.append(("Allow", "GET, HEAD, POST"))
        start_response(status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def respond(self, environ: Environ, reader: Reader) -> tuple[str, bytes]:
        """(status, page) for one request, the page in the reader's language; suppresses the address on a
        valid POST."""
        _ = reader.words
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return "405 Method Not Allowed", self.page(
                reader, _("Not allowed"), _("Open the link from the email.")
            )
        fields = self.link.fields(environ)
        token = fields.get("token", "")
        # The token carries the address; a template that also has {email} must agree with it.
        email = address_from_token(self.secret, token) or ""
        if "email" in fields and not check_unsubscribe_token(self.secret, fields["email"], token):
            email = ""
        if not email or not _valid(email):
            return "400 Bad Request", self.page(
                reader,
                _("This unsubscribe link is not valid"),
                _("The link may have been cut or changed. Use the link in the latest email, or reply to it."),
            )
        if method != "POST":
            return "200 OK", self.confirm(email, reader)
        form = self.form(environ)
        if form is None:
            return "413 Content Too Large", self.page(reader, _("Too large"), _("This request is too large."))
        if form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            return "400 Bad Request", self.page(
                reader, _("Not an unsubscribe request"), _("Use the button on the page.")
            )
        now = datetime.now(UTC)
        agent = re.sub(r"[\x00-\x1f\x7f]", " ", _text(environ.get("HTTP_USER_AGENT", "")))[:300]
        # The page's button says where it came from; a mail client's one-click POST does not.
        source = "link" if form.get("from") == "page" else "one-click"
        with Suppressions(self.suppressions) as store:
            store.add(
                email,
                reason="unsubscribed",
                source=source,
                evidence=f"POST at {now.isoformat(timespec='seconds')}; user agent: {agent or '(none)'}",
                at=now,
            )
        said = _("%(email)s will get no more of %(title)s.", email=email, title=reader.title)
        return "200 OK", self.page(reader, _("You are unsubscribed"), said, done=True)

    def form(self, environ: Environ) -> dict[str, str] | None:
        """The POST's form fields (urlencoded or multipart); None when the body is over MAX_BODY."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return {}
        if length > MAX_BODY:
            return None
        stream = environ.get("wsgi.input")
        body = b""
        while stream is not None and len(body) < length:
            chunk = stream.read(length - len(body))
            if not chunk:
                break
            body += chunk
        kind = _text(environ.get("CONTENT_TYPE", ""))
        if kind.lower().startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
            return {
                str(part.get_param("name", header="content-disposition")): _text(
                    part.get_payload(decode=True)
                )
                for part in message.iter_parts()
                if part.get_param("name", header="content-disposition")
            }
        return {k: v[0] for k, v in parse_qs(_text(body), keep_blank_values=True).items()}

    def confirm(self, email: str, reader: Reader) -> bytes:
        """The page a GET shows: one button, a form POST of List-Unsubscribe=One-Click to this same URL."""
        _ = reader.words
        values = {"email": email, "title": reader.title}
        with Suppressions(self.suppressions) as store:
            if store.is_suppressed(email):
                said = _("%(email)s gets no more of %(title)s.", **values)
                return self.page(reader, _("You are unsubscribed"), said, done=True)
        button = (
            '<form method="post">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="from" value="page">'
            f'<button type="submit" id="unsubscribe">{html.escape(_("Unsubscribe"))}</button></form>'
        )
        heading = _("Unsubscribe from %(title)s?", **values)
        return self.page(reader, heading, _("%(email)s will get no more of it.", **values), extra=button)

    def page(self, reader: Reader, heading: str, text: str, *, extra: str = "", done: bool = False) -> bytes:
        """A plain page in the reader's language; every value escaped (the translated words too)."""
        e = html.escape
        return (
            f'<!doctype html>\n<html lang="{e(reader.tag)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(heading)}</title><style>body{{font:1.1em/1.5 system-ui,sans-serif;max-width:32em;"
            "margin:3em auto;padding:0 1em}button{font:inherit;padding:.5em 1.5em}</style></head>"
            f"<body{' class=done' if done else ''}><h1>{e(heading)}</h1><p>{e(text)}</p>{extra}"
            "</body></html>\n"
        ).encode()


def make_app(config: Config) -> Endpoint:
    """The endpoint for a workspace; ConfigError without an https unsubscribe_url or a strong secret."""
    if not config.send.unsubscribe_url:
        raise ConfigError(
            "[send] unsubscribe_url is not set: the endpoint answers the links it makes "
            "(e.g. https://example.org/unsubscribe?u={token})"
        )
    languages = config.language_order()
    for lang in languages:  # a broken catalog of the workspace stops the server at start-up
        translations(lang, config.paths.locale)
    return Endpoint(
        template=config.send.unsubscribe_url,
        secret=check_unsubscribe_secret(config.secrets.unsubscribe_secret),
        suppressions=config.paths.suppressions,
        title=config.texts(config.language).title,
        language=config.language,
        titles={lang: config.texts(lang).title for lang in languages},
        locale=config.paths.locale,
    )


def app_from_environment(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of the workspace DIGEST_CONFIG names, or of the digest.toml of the current folder."""
    environ = os.environ if environ is None else environ
    path = environ.get("DIGEST_CONFIG")
    return make_app(load_config(Path(path) if path else None, environ=environ))


_app: Endpoint | None = None


def __getattr__(name: str) -> Endpoint:
    # `digest.unsubscribe:app` is made when a WSGI server asks for it, so importing the module reads no
    # config, and a bad one stops the server at start-up rather than failing every request.
    global _app
    if name == "app":
        if _app is None:
            _app = app_from_environment()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def server(config: Config, *, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """The endpoint in a wsgiref server bound to host:port (port 0: any free one), not yet serving."""
    app = make_app(config)
    try:
        return make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    except OSError as err:
        raise DigestError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err


def serve(
    config: Config, *, host: str = "127.0.0.1", port: int = 8080, ready: Callable[[str], None] | None = None
) -> None:
    """Run the endpoint with wsgiref until interrupted; `ready` gets the URL once it listens."""
    with server(config, host=host, port=port) as httpd:
        if ready is not None:
            ready(f"http://{host}:{httpd.server_port}/")
        httpd.serve_forever()

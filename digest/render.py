"""Digest -> HTML (Jinja2 -> MJML -> mjml-python -> premailer) and plain text (Jinja2 -> wrapped text).

Templates: the workspace's templates/ folder first, the packaged defaults behind it, so one file can be
overridden and still `{% extends "default/digest.mjml.j2" %}`. StrictUndefined: a typo is an error.

One Renderer per language: the templates' strings go through gettext (Jinja2's i18n extension, with the
workspace's catalogs in front of the packaged ones: digest/i18n.py), dates through Babel (digest/i18n.py).

MJML and premailer run once per digest. What differs per recipient (greeting, unsubscribe link) is left
in the rendered parts as placeholder tokens that digest/message.py fills in with escaped values.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import textwrap
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import mjml
from babel import Locale
from markupsafe import Markup

from digest.config import Config
from digest.css import inline_css
from digest.errors import TemplateError
from digest.fsutil import bytecode_cache
from digest.i18n import format_date, format_datetime, html_gettext, translations
from digest.mjmlschema import lint_mjml, unclosed_tags
from digest.outdir.files import lang_folder
from digest.select import Digest
from digest.window import in_language
from digest.words import lang_tag

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
WIDTH = 78

# Placeholder tokens for per-recipient values: plain ASCII that survives HTML escaping, MJML, premailer and
# line wrapping. The random part makes them unguessable, so an item's text can never forge one (an item
# titled "__DIGEST_UNSUBSCRIBE_URL__" would otherwise become a link). They live for one process only:
# content_hash() replaces them with fixed names, so the hash stays the same from run to run.
_NONCE = secrets.token_hex(8)
GREETING = f"__DIGEST_GREETING_{_NONCE}__"
UNSUBSCRIBE_URL = f"__DIGEST_UNSUBSCRIBE_URL_{_NONCE}__"


def default_templates_dir() -> Path:
    """The packaged default templates (inside the wheel; in a source checkout, the repo's templates/)."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def _wrap(text: str, width: int = WIDTH, indent: str = "", first: str | None = None) -> str:
    """Wrap prose for the text part, paragraph by paragraph; URLs are never broken, other long words are."""
    out: list[str] = []
    for n, para in enumerate(re.split(r"\n\s*\n", str(text).strip())):
        if n:
            out.append("")
        lines = textwrap.wrap(
            " ".join(para.split()),
            width=width,
            initial_indent=indent if (first is None or n) else first,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in lines:
            if len(line) <= width or "://" in line:
                out.append(line)
                continue
            # A single word longer than the line is cut, so that no line exceeds the width.
            step = width - len(indent)
            body = line[len(indent) :]
            out.extend(indent + body[i : i + step] for i in range(0, len(body), step))
    return "\n".join(out)


def _host(url: str) -> str:
    return urlsplit(url).netloc.removeprefix("www.") if url else ""


def _markdown_text(text: str, *args: Any, **kwargs: Any) -> str:
    """plaintext.markdown_text, imported at its first use: only items with a body need it."""
    from digest.plaintext import markdown_text

    return markdown_text(text, *args, **kwargs)


def markdown_html(text: str) -> Markup:
    """Markdown body -> HTML (digest/markdown.py's parser, imported at its first use: only bodies need it).
    Raw HTML is escaped (html=False); a link an email may not carry shows as its words."""
    from digest.markdown import html_parser

    return Markup(html_parser().render(text))  # noqa: S704 - markdown-it escapes raw HTML (html=False)


@dataclass(frozen=True)
class Rendered:
    """The rendered parts of one digest, with placeholders for per-recipient values."""

    mjml: str
    html: str
    text: str
    subject: str
    preheader: str


class Renderer:
    """Holds the Jinja2 environment for one workspace; render() many digests with it."""

    def __init__(self, config: Config, *, now: datetime, lang: str | None = None, main: bool = True) -> None:
        self.config = config
        self.now = now
        self.lang = lang or config.language
        self.texts = config.texts(self.lang)
        self.locale = Locale.parse(self.lang)
        # The digest's own language is out/<slug>/ (and its web version there); each further one is a
        # folder inside it, out/<slug>/<lang>/.
        self.folder = "" if main else lang_folder(self.lang) + "/"

    @cached_property
    def env(self) -> jinja2.Environment:
        """The Jinja2 environment: user templates first, packaged defaults behind."""
        defaults = jinja2.FileSystemLoader(default_templates_dir())
        loaders: list[jinja2.BaseLoader] = []
        if self.config.paths.templates.is_dir():
            loaders.append(jinja2.FileSystemLoader(self.config.paths.templates))
        loaders += [jinja2.PrefixLoader({"default": defaults}), defaults]
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            # Everything is HTML-escaped except *.txt.j2, the text part, which is not HTML.
            autoescape=jinja2.select_autoescape(
                enabled_extensions=(), disabled_extensions=("txt.j2",), default_for_string=True, default=True
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=bytecode_cache(self.config.paths.cache),
            extensions=["jinja2.ext.i18n"],
        )
        # New-style gettext: `_("Read more: %(title)s", title=...)` escapes its values in HTML templates,
        # and the translation itself where its original is text (i18n.html_gettext).
        words = translations(self.lang, self.config.paths.locale)  # the workspace's catalogs in front
        env.install_gettext_callables(**html_gettext(words), newstyle=True)  # type: ignore[attr-defined]
        env.filters["date"] = lambda d, fmt="long": format_date(d, fmt, locale=self.locale)
        env.filters["datetime"] = lambda d, fmt="medium": format_datetime(d, fmt, locale=self.locale)
        env.filters["wrap"] = _wrap
        env.filters["host"] = _host
        env.filters["markdown"] = markdown_html
        env.filters["markdown_text"] = _markdown_text  # the same body, as plain text for digest.txt.j2
        return env

    def _context(self, digest: Digest, *, web: bool) -> dict[str, Any]:
        c, texts = self.config, self.texts
        web_url = f"{c.base_url}{digest.window.slug}/{self.folder}"
        window = digest.window if self.lang == c.language else in_language(digest.window, self.lang)
        ctx: dict[str, Any] = {
            "digest": digest,
            "window": window,
            "sections": digest.sections,
            "title": texts.title,
            "intro": texts.intro,
            "language": lang_tag(self.lang),
            "dir": "rtl" if self.locale.character_order == "right-to-left" else "ltr",
            "web_url": web_url,
            "web": web,
            "greeting": "" if web else GREETING,
            "unsubscribe_url": "" if web else UNSUBSCRIBE_URL,
            "from_name": texts.from_name or c.sender.addr_spec,
            "now": self.now,
        }
        ctx["subject"] = self._render_string("subject", texts.subject, ctx)
        ctx["preheader"] = self._preheader(digest, ctx)
        return ctx

    def _render_string(self, what: str, source: str, ctx: dict[str, Any]) -> str:
        try:
            out = " ".join(_header_template(source).render(ctx).split())
        except jinja2.TemplateError as err:
            raise TemplateError(f"digest.toml: {what} template: {err}") from err
        return out

    def _preheader(self, digest: Digest, ctx: dict[str, Any]) -> str:
        if self.texts.preheader:
            return self._render_string("preheader", self.texts.preheader, ctx)
        titles = "; ".join(i.title for i in digest.items[:3])
        return titles if len(titles) <= 100 else titles[:99].rsplit(" ", 1)[0] + "…"

    def render(self, digest: Digest, *, web: bool = False) -> Rendered:
        """Render the email (or, with web=True, the web version: no limits cut, no personal parts)."""
        ctx = self._context(digest, web=web)
        source = self._template(HTML_TEMPLATE, ctx)
        try:
            self._refuse_bad_mjml(source, ctx)
            compiled = compile_mjml(source, template=HTML_TEMPLATE, keep_failed=self.config.paths.cache)
        except TemplateError as err:
            raise TemplateError(self._locate(str(err), source, ctx)) from err.__cause__
        html = inline_css(compiled, cache_dir=self.config.paths.cache)
        text = "" if web else self._template(TEXT_TEMPLATE, ctx)
        text = "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n" if text else ""
        return Rendered(mjml=source, html=html, text=text, subject=ctx["subject"], preheader=ctx["preheader"])

    def _refuse_bad_mjml(self, source: str, ctx: dict[str, Any]) -> None:
        """MRML drops a tag it does not know, and a component where it cannot be, with all they hold: the
        summaries of a digest can vanish from a build that exits 0. Those fail the build instead."""

        bad = [p for p in lint_mjml(source) if p.rule in _FATAL_MJML]
        if bad:
            where = self._template_line(bad[0].line, ctx)
            raise TemplateError(f"{where}: {bad[0].message}; {bad[0].fix}")

    def _locate(self, message: str, source: str, ctx: dict[str, Any]) -> str:
        """Put the template's file and line in place of a line of the generated MJML in an error message."""
        m = re.search(r"at line (\d+), column (\d+) of the generated MJML", message)
        if not m:
            return message
        where = self._template_line(int(m[1]), ctx)
        return f"{where}: {message.removeprefix(HTML_TEMPLATE + ': ')}"

    def _template_line(self, mjml_line: int, ctx: dict[str, Any]) -> str:
        """The template file and line that wrote a line of the generated MJML."""

        lines = source_lines(self.env.get_template(HTML_TEMPLATE), ctx)
        if 0 < mjml_line <= len(lines):
            filename, line = lines[mjml_line - 1]
            return f"{_template_path(filename, HTML_TEMPLATE)}:{line}"
        return HTML_TEMPLATE

    def _template(self, name: str, ctx: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(ctx)
        except jinja2.TemplateSyntaxError as err:
            where = _template_path(err.filename, err.name or name)
            raise TemplateError(f"{where}:{err.lineno}: {err.message}") from err
        except jinja2.TemplateNotFound as err:
            raise TemplateError(f"template {err.name!r} not found in {self.config.paths.templates}") from err
        except jinja2.UndefinedError as err:
            raise TemplateError(f"{_runtime_location(err, name)}: {err.message}") from err
        except jinja2.TemplateError as err:
            raise TemplateError(f"{_runtime_location(err, name)}: {err}") from err


_FATAL_MJML = ("mjml-unknown-tag", "mjml-nesting")


@functools.lru_cache(maxsize=64)
def _header_template(source: str) -> jinja2.Template:
    """A subject or preheader template, compiled once per process (a build renders each one per language
    and per place, and the live preview for every change)."""
    # A header, not HTML: escaping would show "&amp;" in the subject line. CR/LF are refused later.
    plain = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    return plain.from_string(source)


def _template_path(filename: str | None, name: str) -> str:
    if filename:
        try:
            return str(Path(filename).relative_to(Path.cwd()))
        except ValueError:
            return filename
    return name


def _runtime_location(err: Exception, name: str) -> str:
    """Find the template file and line in the traceback of an error raised while rendering."""
    tb = err.__traceback__
    where = name
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{_template_path(filename, name)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def compile_mjml(source: str, *, template: str, keep_failed: Path | None = None) -> str:
    """MJML -> HTML with mjml-python (MRML); errors name the template and the line of the MJML.

    A build that fails writes nothing to out/, so MJML that does not compile is kept in `keep_failed`
    (the cache folder) as failed.mjml, for the template author to look at."""
    try:
        # fonts={}: MRML would otherwise link Google Fonts for font names it knows (Roboto, Ubuntu...): a
        # request to a third party from every subscriber's mail client, and no help offline.
        out = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as err:
        message = str(err)
        where = ""
        m = re.search(r"position (\d+)", message)
        if m:
            offset = int(m[1])
            line = source.count("\n", 0, offset) + 1
            column = offset - (source.rfind("\n", 0, offset) + 1) + 1
            snippet = source.splitlines()[line - 1].strip()[:80] if source else ""
            where = f" at line {line}, column {column} of the generated MJML: {snippet!r}"
        else:  # "unexpected end of stream": MRML does not say where; a tag left open is the usual cause
            opened = unclosed_tags(source)
            if opened:
                tag, line, column = opened[0]
                where = f" at line {line}, column {column} of the generated MJML: <{tag}> is never closed"
        kept = ""
        if keep_failed is not None:
            try:
                keep_failed.mkdir(parents=True, exist_ok=True)
                (keep_failed / "failed.mjml").write_text(source, encoding="utf-8")
                kept = f" (the MJML is in {_template_path(str(keep_failed / 'failed.mjml'), 'failed.mjml')})"
            except OSError:
                pass
        raise TemplateError(
            f"{template}: the MJML it produced does not compile: {message}{where}{kept}"
        ) from err
    return str(out)


def content_hash(rendered: Rendered) -> str:
    """A hash of what every subscriber gets (subject, HTML, text), stable across runs."""
    parts = []
    for part in (rendered.subject, rendered.html, rendered.text):
        parts.append(part.replace(GREETING, "{greeting}").replace(UNSUBSCRIBE_URL, "{unsubscribe_url}"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def source_lines(template: jinja2.Template, ctx: dict[str, Any]) -> list[tuple[str, int]]:
    """Render again, piece by piece, noting for each line of the output the template file and line that
    wrote it (slow: only for an error message).

    Each piece comes from a `yield` in the compiled template; the suspended generator chain says which one,
    and Jinja's debug info maps it to a template line. A piece of the template's own text is found in its
    file, so the lines inside it count exactly; a value (an item's text) stays on its expression's line.
    """
    lines: list[tuple[str, int] | None] = [None]  # per output line: who wrote its first visible text
    sources: dict[str, list[str]] = {}
    last = (template.filename or HTML_TEMPLATE, 1)
    gen = template.generate(ctx)
    for chunk in gen:
        inner: Any = gen
        while getattr(inner, "gi_yieldfrom", None) is not None:
            inner = inner.gi_yieldfrom
        frame = inner.gi_frame
        owner = frame.f_globals.get("__jinja_template__") if frame is not None else None
        filename, line = last
        if owner is not None and frame is not None:
            filename = owner.filename or owner.name or HTML_TEMPLATE
            line = owner.get_corresponding_lineno(frame.f_lineno)
        if filename not in sources:
            try:
                sources[filename] = Path(filename).read_text(encoding="utf-8").splitlines()
            except OSError:
                sources[filename] = []
        cursor = line  # where to look for the next piece of template text in its file
        for n, piece in enumerate(chunk.split("\n")):
            if n:
                lines.append(None)
                cursor += 1
            text = piece.strip()
            if not text:
                continue
            # The template's own text is found in its file (a comment or a tag in between moves it down);
            # a value (an item's text) is not, and stays on the line of its expression.
            found = _find_line(sources[filename], text, cursor)
            cursor = found or cursor  # the next line of this piece is below the one it was found on
            if lines[-1] is None:
                lines[-1] = (filename, found or line)
        last = (filename, line)
    filled: list[tuple[str, int]] = []
    for entry in lines:  # a blank line belongs with the one before it
        filled.append(entry or (filled[-1] if filled else last))
    return filled


def _find_line(source: list[str], text: str, start: int) -> int | None:
    """The first line from `start` on, a few lines down at most, that holds the text."""
    for n in range(start, min(start + 12, len(source)) + 1):
        if text in source[n - 1]:
            return n
    return None

"""RSS/Atom feeds -> new item files (`digest import`).

Each entry becomes one item file with the usual front matter plus `source_id` (the entry's id or guid) and
`feed` (where it came from). An entry is new unless an existing item has its id or, failing that, its link:
a second import adds only what is new, and no existing file is ever overwritten. Fetching is
digest/feedfetch.py's; parsing is feedparser's; the description's HTML becomes text through inscriptis.
"""

from __future__ import annotations

import calendar
import email.utils
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser  # type: ignore[import-untyped]
import frontmatter
import yaml
from inscriptis import get_text  # type: ignore[import-untyped]

from digest.config import Config
from digest.config.values import language
from digest.errors import FeedError
from digest.feedfetch import Fetched, fetch, load_validators, save_validators
from digest.items import BadItem, check_url, parse_item
from digest.listing import iter_item_files
from digest.words import slugify

__all__ = ["FeedError", "FeedReport", "NewItem", "Source", "import_feeds", "plain_text", "shorten"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_FRONT = frontmatter.default_handlers.YAMLHandler()
_SPACES = re.compile(r"\s+")
# A sentence ends at . ! ? or … (maybe closed by a quote or bracket) followed by a space.
_SENTENCE_END = re.compile(r"[.!?…。][\"'»”’)\]]?(?=\s)")
# Harmless complaints of feedparser's: the feed was read as it should be.
_BENIGN = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True, kw_only=True)
class Source:
    """One feed to import: a URL or a file, its category for entries the category map does not place."""

    location: str
    category: str = ""  # "" -> [import] default_category
    language: str = ""
    given: str = ""  # as the user wrote it (a file relative to digest.toml): the items' `feed`; "": location


@dataclass(frozen=True, kw_only=True)
class NewItem:
    """An item file written (or, in a dry run, that would be)."""

    path: Path
    title: str
    text: str


@dataclass(frozen=True, kw_only=True)
class FeedReport:
    """What one feed gave: the items written, how many were already there, and what was said about it."""

    source: str
    written: tuple[NewItem, ...] = ()
    known: int = 0
    notes: tuple[str, ...] = ()
    not_modified: bool = False
    error: str = ""


@dataclass
class _Existing:
    """The ids, links and slugs of every item already in the folder (and of those written by this run)."""

    ids: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    slugs: set[str] = field(default_factory=set)


def plain_text(html: str) -> str:
    """HTML (or plain text) -> one line of plain text, entities decoded, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return _SPACES.sub(" ", html).strip()
    return _SPACES.sub(" ", get_text(html)).strip()


def shorten(text: str, limit: int) -> str:
    """Text cut at the last sentence end within `limit` characters; at a word with '…' when none is."""
    if len(text) <= limit:
        return text
    # The space after a sentence's end must be within the limit too: each match ends at `limit` or before.
    ends = [m.end() for m in _SENTENCE_END.finditer(text[: limit + 1])]
    if ends and ends[-1] >= limit // 3:  # a sentence much shorter than allowed would say too little
        return text[: ends[-1]]
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[: limit - 1]
    return cut.rstrip(" ,;:-–—") + "…"


def _existing(items_dir: Path) -> _Existing:
    known = _Existing()
    if not items_dir.is_dir():
        return known
    for _key, path, _changed in iter_item_files(items_dir, known_dirs={}, since_ns=0, dirs={}):
        name = Path(path).name
        known.slugs.add(name.rsplit(".", 1)[0])
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = yaml.load(_FRONT.split(text)[0], Loader=_Loader)  # noqa: S506 (a safe loader) if _FRONT.detect(text) else None
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
            continue  # a broken item is the scan's to report; it cannot be matched anyway
        if isinstance(data, dict):
            if isinstance(data.get("source_id"), str):
                known.ids.add(data["source_id"])
            if isinstance(data.get("url"), str):
                known.links.add(data["url"])
    return known


def _date(raw: str, parsed: Any) -> datetime | None:
    """A feed date keeping its offset (RFC 822 for RSS, RFC 3339 for Atom); feedparser's UTC as a fallback."""
    text = raw.strip()
    for read in (email.utils.parsedate_to_datetime, datetime.fromisoformat):
        try:
            dt = read(text)
        except (TypeError, ValueError, IndexError):
            continue
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).replace(microsecond=0)
    if parsed:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)  # feedparser's struct_time is UTC
    return None


def _first_date(node: Any) -> datetime | None:
    for key in ("published", "updated", "created"):
        if node.get(key) or node.get(f"{key}_parsed"):
            found = _date(str(node.get(key) or ""), node.get(f"{key}_parsed"))
            if found:
                return found
    return None


def _absolute(link: str, base: str) -> str | None:
    """link resolved against base (feedparser has applied xml:base already), if it is a usable http(s) URL."""
    if not link:
        return None
    try:
        return check_url(urljoin(base, link.strip()) if base else link.strip(), what="link")
    except ValueError:
        return None


def _image(entry: Any, base: str) -> str | None:
    candidates: list[str] = []
    for media in entry.get("media_content", []):
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            candidates.append(media.get("url", ""))
    candidates += [m.get("url", "") for m in entry.get("media_thumbnail", [])]
    for enclosure in entry.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/"):
            candidates.append(enclosure.get("href", ""))
    for url in candidates:
        found = _absolute(url, base)
        if found:
            return found
    return None


def _category(entry: Any, source: Source, config: Config) -> str:
    mapping = dict(config.feeds_import.categories)
    for tag in entry.get("tags", []):
        term = str(tag.get("term") or "").strip()
        if term in mapping:
            return mapping[term]
    return source.category or config.feeds_import.default_category


def _fields(
    entry: Any, feed: Any, *, source: Source, base: str, config: Config, now: datetime, notes: list[str]
) -> dict[str, Any] | None:
    """One entry -> the new item's front matter, or None (skipped, with a note saying why)."""
    detail = entry.get("title_detail") or {}
    raw_title = str(entry.get("title") or "")
    title = (
        plain_text(raw_title) if detail.get("type") in _HTML_TYPES else _SPACES.sub(" ", raw_title).strip()
    )
    link = _absolute(str(entry.get("link") or ""), base)
    name = f"{title!r}" if title else (link or str(entry.get("id") or "an entry"))
    if not title:
        notes.append(f"{name}: no title: skipped")
        return None
    if title != _SPACES.sub(" ", raw_title).strip():
        notes.append(f"{name}: the title had HTML: tags removed")
    when = _first_date(entry)
    if when is None:
        when = _first_date(feed) or now.astimezone(UTC).replace(microsecond=0)
        said = "the feed's date" if _first_date(feed) else "the time of the import"
        notes.append(f"{name}: no date: dated {when.isoformat()} ({said})")
    if when > now:
        notes.append(
            f"{name}: dated in the future ({when.isoformat()}): skipped; import again when it is due"
        )
        return None
    body = entry.get("summary") or (entry.get("content") or [{}])[0].get("value") or ""
    summary = shorten(plain_text(str(body)), config.feeds_import.summary_length)
    if not summary:
        summary = title
        notes.append(f"{name}: no description: the summary repeats the title")
    fields: dict[str, Any] = {
        "title": title,
        "date": when.isoformat(),
        "category": _category(entry, source, config),
    }
    if link:
        fields["url"] = link
    elif entry.get("link"):
        notes.append(f"{name}: link {entry.get('link')!r} is not an absolute http(s) address: no url")
    image = _image(entry, base)
    if image:
        fields["image"] = image
        fields["image_alt"] = plain_text(str(entry.get("media_description") or "")) or title
    fields["summary"] = summary
    declared = source.language or str(entry.get("language") or feed.get("language") or "")
    lang = _language(declared, config)
    if lang:
        fields["lang"] = lang
    elif declared.strip() and lang is None:
        notes.append(
            f"{name}: the feed's language {declared.strip()!r} is not a language code: filed in the "
            "workspace's language (give the feed's language with --language or in [[import.feeds]])"
        )
    fields["source_id"] = str(entry.get("id") or link or "")
    fields["feed"] = source.given or source.location
    return fields


def _parse(fetched: Fetched, location: str, notes: list[str]) -> Any:
    data = fetched.data or b""
    headers = {"content-location": fetched.base} if fetched.base else {}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type
    # Summaries become plain text: feedparser's sanitising and link rewriting inside HTML would be wasted.
    parsed = feedparser.parse(
        io.BytesIO(data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.get("version") and not parsed.entries:
        why = f" ({problem})" if problem else ""
        raise FeedError(f"{location}: not an RSS or Atom feed{why}")
    if problem is not None and not isinstance(problem, _BENIGN):
        line = getattr(problem, "getLineNumber", lambda: None)()
        where = f" at line {line}" if line else ""
        notes.append(
            f"{location}: bad XML{where}: {getattr(problem, 'getMessage', lambda: problem)()}; "
            f"read leniently: {len(parsed.entries)} entries could be read, anything past the damage was not"
        )
    return parsed


def _write(path: Path, text: str) -> bool:
    try:
        with open(path, "x", encoding="utf-8") as f:  # "x": a file that exists is never overwritten
            f.write(text)
    except FileExistsError:
        return False
    return True


def _import_one(
    source: Source, *, config: Config, known: _Existing, cache: dict[str, dict[str, str]], dry_run: bool,
    now: datetime, timeout: float,
) -> FeedReport:  # fmt: skip
    fetched = fetch(source.location, known=cache.get(source.location, {}), timeout=timeout)
    if fetched.data is None:
        return FeedReport(source=source.location, not_modified=True)
    notes: list[str] = []
    parsed = _parse(fetched, source.location, notes)
    base = fetched.base
    written: list[NewItem] = []
    seen = 0
    for entry in parsed.entries:
        early_id, early_link = str(entry.get("id") or ""), _absolute(str(entry.get("link") or ""), base)
        if (early_id and early_id in known.ids) or (early_link and early_link in known.links):
            seen += 1  # known already: not worth the HTML-to-text work, nor saying again what was said
            known.ids.add(early_id)  # its twin later in the feed (same id, other link) is the same entry
            continue
        fields = _fields(entry, parsed.feed, source=source, base=base, config=config, now=now, notes=notes)
        if fields is None:
            continue
        ident, link = fields["source_id"], fields.get("url")
        text = (
            "---\n"
            + yaml.dump(fields, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
            + "---\n"
        )
        stem = f"{fields['date'][:10]}-{slugify(fields['title'], max_len=60)}"
        slug, n = stem, 1
        while slug in known.slugs:
            n += 1
            slug = f"{stem}-{n}"
        path = config.paths.items / f"{slug}.md"
        try:
            parse_item(Path(path.name), text.encode(), config.tz)
        except BadItem as bad:  # what the build would refuse is not written; each reason is said
            why = "; ".join(why for _, why in bad.problems)
            notes.append(f"{fields['title']!r}: cannot be made into an item ({why}): skipped")
            continue
        if not dry_run:
            config.paths.items.mkdir(parents=True, exist_ok=True)
            if not _write(path, text):
                notes.append(f"{path.name}: appeared while importing: left as it is")
                continue
        known.ids.add(ident)
        if link:
            known.links.add(link)
        known.slugs.add(slug)
        written.append(NewItem(path=path, title=fields["title"], text=text))
    if not dry_run and fetched.validators and source.location.lower().startswith(("http://", "https://")):
        cache[source.location] = fetched.validators
    return FeedReport(source=source.location, written=tuple(written), known=seen, notes=tuple(notes))


def import_feeds(
    config: Config, sources: Iterable[Source], *, now: datetime, dry_run: bool = False, timeout: float = 20.0
) -> list[FeedReport]:
    """Import each feed into the items folder; a feed that fails is reported and the others still run."""
    known = _existing(config.paths.items)
    cache = load_validators(config.paths.cache)
    reports: list[FeedReport] = []
    for source in sources:
        try:
            reports.append(
                _import_one(
                    source, config=config, known=known, cache=cache, dry_run=dry_run, now=now, timeout=timeout
                )
            )
        except FeedError as err:
            reports.append(FeedReport(source=source.location, error=str(err)))
        except OSError as err:
            reports.append(FeedReport(source=source.location, error=f"{source.location}: {err}"))
    if not dry_run:
        save_validators(config.paths.cache, cache)
    return reports


def _language(declared: str, config: Config) -> str | None:
    """The item's `lang`: the feed's language (set in [[import.feeds]], or the feed's own <language> or
    xml:lang), as the build files it; "" for the workspace's own language, None for a tag that is none."""
    try:
        code = language(declared) if declared.strip() else ""
    except ValueError:
        return None
    lang = config.digest_language(code) if code else ""
    if lang == code and "_" in code:  # fr-FR, with no fr_FR digest configured: the French digest
        lang = config.digest_language(code.split("_")[0])
    return "" if lang == config.language else lang


def configured_sources(config: Config) -> list[Source]:
    """The feeds listed in digest.toml ([[import.feeds]]); relative file paths against the config's folder."""
    return [
        Source(
            location=f.url
            if f.url.lower().startswith(("http://", "https://"))
            else str(config.paths.root / f.url),
            category=f.category,
            language=f.language,
            given=f.url,
        )
        for f in config.feeds_import.feeds
    ]

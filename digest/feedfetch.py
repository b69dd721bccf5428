"""Getting a feed's bytes: a local file, or HTTP(S) with a timeout, redirects and a conditional GET whose
validators (ETag, Last-Modified) are kept in the workspace cache. digest/feeds.py makes items of them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from digest import __version__
from digest.errors import DigestError, FeedError
from digest.fsutil import atomic_write

USER_AGENT = f"digest/{__version__} (feed import)"
ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, */*;q=0.5"
MAX_BYTES = 50 * 1024 * 1024  # a feed bigger than this is a mistake (or an attack), not news
CACHE_NAME = "feeds.json"


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """A feed's bytes (None: not modified since the last import) and what came with them."""

    data: bytes | None
    base: str = ""  # the URL after redirects, against which relative links resolve ("" for a file)
    content_type: str = ""
    validators: dict[str, str] = field(default_factory=dict)  # etag / last_modified for the next fetch


def is_url(location: str) -> bool:
    """True for an http(s) address, False for a file path."""
    return location.lower().startswith(("http://", "https://"))


def load_validators(cache: Path) -> dict[str, dict[str, str]]:
    """The ETag/Last-Modified kept for each feed URL; empty when the cache is missing or unreadable."""
    try:
        data = json.loads((cache / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a lost cache only costs one full download per feed
    return data if isinstance(data, dict) else {}


def save_validators(cache: Path, validators: dict[str, dict[str, str]]) -> None:
    """Keep the validators for the next import's conditional GET."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(cache / CACHE_NAME, json.dumps(validators, indent=1, sort_keys=True).encode())
    except OSError as err:
        raise DigestError(f"{cache / CACHE_NAME}: cannot write the feed cache: {err.strerror}") from err


def fetch(location: str, *, known: dict[str, str], timeout: float) -> Fetched:
    """Read a feed file, or GET a feed URL (conditional on `known` validators); raise FeedError naming it."""
    if not is_url(location):
        try:
            return Fetched(data=Path(location).read_bytes())
        except OSError as err:
            raise FeedError(f"{location}: cannot read the feed file: {err.strerror}") from err
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if known.get("etag"):
        headers["If-None-Match"] = known["etag"]
    if known.get("last_modified"):
        headers["If-Modified-Since"] = known["last_modified"]
    request = urllib.request.Request(location, headers=headers)  # noqa: S310 (is_url: http(s) only)
    try:
        # urllib follows up to 10 redirects itself; geturl() is where they ended.
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = response.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise FeedError(f"{location}: the feed is larger than {MAX_BYTES // 2**20} MB")
            validators = {
                k: v
                for k, v in (
                    ("etag", response.headers.get("ETag", "")),
                    ("last_modified", response.headers.get("Last-Modified", "")),
                )
                if v
            }
            return Fetched(
                data=data,
                base=response.geturl(),
                content_type=response.headers.get("Content-Type", ""),
                validators=validators,
            )
    except urllib.error.HTTPError as err:
        if err.code == 304:
            return Fetched(data=None, base=location, validators=known)
        raise FeedError(f"{location}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:  # a connect timeout too: "cannot connect: timed out"
        raise FeedError(f"{location}: cannot connect: {err.reason}") from err
    except TimeoutError as err:
        raise FeedError(f"{location}: no answer within {timeout:g} s") from err
    except (OSError, ValueError) as err:
        raise FeedError(f"{location}: cannot fetch: {err}") from err

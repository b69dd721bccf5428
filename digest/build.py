"""Items + window -> out/<slug>/, in four steps that read straight: scan -> select -> render -> write.

The folder's format (the manifest, the parts a send personalises, the swap) belongs to digest/outdir.py;
this module only decides what goes into it. digest.html and digest.eml are made by the same code that makes
each sent message (digest/message.py), for a preview recipient, so the preview has the sent shape.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from digest import __version__, outdir
from digest.config import Config
from digest.errors import DigestError, EmptyWindow, OutputError
from digest.fsutil import rel_path, shown
from digest.items import Item
from digest.outdir import ItemRecord, Manifest, Parts, SectionRecord
from digest.outdir.files import GMAIL_CLIP_BYTES
from digest.scan import Scan, Scanner
from digest.select import Digest, select
from digest.window import Window

if TYPE_CHECKING:
    from digest.render import Rendered, Renderer


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    folder: Path
    digest: Digest
    manifest: Manifest
    sizes: dict[str, int]
    warnings: tuple[str, ...]
    scan: Scan


class _Drafts(NamedTuple):
    digest: Digest
    email: Rendered
    web: Rendered


def build(config: Config, window: Window, *, now: datetime) -> BuildResult:
    """Build the digest of one window into <paths.out>/<slug>/, atomically."""
    found, drafts = scan_and_render(config, window, now=now)
    files, manifest = assemble(config, window, found, drafts, now=now)
    folder = outdir.folder_of(config.paths.out, window.slug)
    outdir.write(folder, files)
    from digest.site import write_index  # imported here, as the renderer is: see scan_and_render

    warnings = list(manifest.warnings)
    try:
        write_index(config.paths.out, title=config.title)  # out/index.html, the archive of every build
    except OutputError as err:  # the digest itself is built and in place: say so, do not report failure
        warnings.append(f"the digest is built, but the archive page is not up to date: {err}")
    sizes = {name: int(f["bytes"]) for name, f in manifest.files.items()}
    return BuildResult(folder, drafts.digest, manifest, sizes, tuple(warnings), found)


def collect(config: Config, window: Window) -> tuple[Digest, Scan]:
    """Scan and select only: the items inside the window, grouped (what `digest list` shows)."""
    scanner = _scanner(config)
    scanner.start_walk(background=False)
    found = scanner.finish(window.start, window.end)
    return _select(config, window, found.items), found


def scan_and_render(config: Config, window: Window, *, now: datetime) -> tuple[Scan, _Drafts]:
    """Scan the items, select the window's, render them: the items found and the rendered digest.

    With a warm index the render starts before the scan ends: the window as the index knows it is
    rendered while a forked process lists the folder (on a 100,000-file archive that listing is a third
    of the build), and rendered again only when the listing changed the window.
    """
    scanner = _scanner(config)
    scanner.start_walk(background=True)
    # Imported only now, so that the listing of a large archive starts before the ~60 ms of importing
    # Jinja2, MJML, babel and the mail modules, which then overlap it.
    from digest.render import Renderer

    renderer = Renderer(config, now=now)
    guess = scanner.speculate(window.start, window.end) if scanner.warm else None
    drafts = None
    # A template error here is reported by the render below, after any bad item file, as without a guess.
    with suppress(DigestError):
        drafts = _render(renderer, config, window, guess) if guess else None
    found = scanner.finish(window.start, window.end)
    if drafts is None or found.items != guess:
        drafts = _render(renderer, config, window, found.items)
    return found, drafts


def _scanner(config: Config) -> Scanner:
    return Scanner(
        config.paths.items, tz=config.tz, cache_dir=config.paths.cache, relative_to=config.paths.root
    )


def _select(config: Config, window: Window, items: list[Item], *, limit: bool = True) -> Digest:
    limit_to = config.categories.limit if limit else 0
    return select(items, window, order=config.categories.order, limit=limit_to)


def _render(renderer: Renderer, config: Config, window: Window, items: list[Item]) -> _Drafts:
    """The digest of these items, rendered as the email and as the web version (which no limit cuts)."""
    digest = _select(config, window, items)
    if not digest.sections:
        raise EmptyWindow(
            f"no items between {_day(window.start)} and {_day(window.end, end=True)}: nothing built"
        )
    full = _select(config, window, items, limit=False) if config.categories.limit else digest
    return _Drafts(digest, renderer.render(digest), renderer.render(full, web=True))


def assemble(
    config: Config, window: Window, found: Scan, drafts: _Drafts, *, now: datetime
) -> tuple[dict[str, bytes], Manifest]:
    """The files of the built folder, and its manifest (the last of them)."""
    from digest.message import personaliser, preview_recipient
    from digest.render import GREETING, UNSUBSCRIBE_URL, content_hash

    digest, rendered, web = drafts
    parts = Parts(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        content_hash=content_hash(rendered),
        placeholders={"greeting": GREETING, "unsubscribe_url": UNSUBSCRIBE_URL},
    )
    # The preview: the very message `digest send` would make, addressed to the sender.
    maker = personaliser(config, parts, now=now, preview=True)
    to = preview_recipient(config)
    values = maker.values(to.addr_spec)
    html, text = maker.fill(values)
    files: dict[str, bytes] = {
        "digest.html": html.encode(),
        "index.html": web.html.encode(),
        "digest.txt": text.encode(),
        "digest.eml": maker.message(to.addr_spec).data,
        "digest.mjml": rendered.mjml.encode(),  # what was compiled: `digest check` lints it
        outdir.PARTS: parts.to_json(),  # what `digest send` personalises: exactly what was built
    }
    warnings = [*found.warnings, *digest.warnings]
    if len(files["digest.html"]) > GMAIL_CLIP_BYTES:
        warnings.append(
            f"the HTML is {len(files['digest.html']) / 1024:.0f} KB: Gmail clips messages over 102 KB "
            "(set [categories] limit, or shorten the summaries)"
        )
    manifest = Manifest(
        generator=f"digest {__version__}",
        built_at=now.isoformat(),
        slug=window.slug,
        label=window.label,
        start=window.start,
        end=window.end,
        subject=rendered.subject,
        preheader=rendered.preheader,
        web_url=f"{config.base_url}{window.slug}/",
        preview_values={"greeting": values.greeting, "unsubscribe_url": values.link},
        content_hash=parts.content_hash,
        sections=tuple(
            SectionRecord(name=s.name, anchor=s.anchor, shown=len(s.items), more=s.more)
            for s in digest.sections
        ),
        items=tuple(_record(config, i) for i in digest.items),
        files=outdir.hash_files(files),
        warnings=tuple(warnings),
    )
    files[outdir.MANIFEST] = manifest.to_json()
    return files, manifest


def _record(config: Config, item: Item) -> ItemRecord:
    return ItemRecord(
        slug=item.slug,
        title=item.title,
        date=item.when.date().isoformat() if item.all_day else item.when.isoformat(),
        category=item.category,
        url=item.url,
        source=rel_path(config.paths.items / item.source, config.paths.root),
        summary=item.summary,
        body=item.body,
        image=item.image,
        image_alt=item.image_alt,
    )


def changes_since(config: Config, built: outdir.Built) -> list[str]:
    """What changed in the built window's items since the build: one line per item added, edited or
    removed (empty when the folder still shows the items as they are). A send refuses a stale build."""
    window = Window(built.manifest.start, built.manifest.end, built.manifest.label, built.manifest.slug)
    _digest, found = collect(config, window)
    then = {r.source: r for r in built.manifest.items}
    now = {r.source: r for r in (_record(config, i) for i in found.items)}
    lines = [f"added:   {src}" for src in sorted(now.keys() - then.keys())]
    lines += [f"edited:  {src}" for src in sorted(now.keys() & then.keys()) if now[src] != then[src]]
    lines += [f"removed: {src}" for src in sorted(then.keys() - now.keys())]
    return lines


def stale_message(folder: Path, changes: list[str], *, what: str) -> str:
    """The refusal of a send (or a test, or a dry run) of a build the items have moved on from."""
    listed = "\n".join(f"  {c}" for c in changes[:20])
    more = f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else ""
    return (
        f"{shown(folder)}/ is out of date: the window's items changed since it was built:\n{listed}{more}\n"
        f"Rebuild it (`digest build`) and check it, or pass --as-built to {what} the folder as it is."
    )


def _day(dt: datetime, *, end: bool = False) -> str:
    return (dt - timedelta(microseconds=1) if end else dt).date().isoformat()

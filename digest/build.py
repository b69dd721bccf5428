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
from digest.config.content import changed_settings, content_settings
from digest.errors import DigestError, EmptyWindow, OutputError
from digest.fsutil import rel_path, shown
from digest.items import Item
from digest.outdir import ItemRecord, Manifest, MovedRecord, Parts, SectionRecord
from digest.outdir.files import GMAIL_CLIP_BYTES
from digest.scan import Scan, Scanner
from digest.select import Digest, embargoed, select
from digest.window import Window

if TYPE_CHECKING:
    from digest.fit import Fitted
    from digest.render import Rendered, Renderer


@dataclass(frozen=True)
class BuildResult:
    """What a build produced: the digest in its own language, and the further languages' beside it."""

    folder: Path
    digest: Digest
    manifest: Manifest
    sizes: dict[str, int]
    warnings: tuple[str, ...]
    scan: Scan
    languages: tuple[Manifest, ...] = ()  # the further languages' digests, in out/<slug>/<lang>/
    fits: tuple[tuple[str, Fitted], ...] = ()  # what [email] fit moved, per language: (lang, what moved)


class _Drafts(NamedTuple):
    digest: Digest
    email: Rendered
    web: Rendered
    lang: str
    main: bool  # the digest's own folder, out/<slug>/ (else out/<slug>/<lang>/)
    full: Digest  # what the web version shows: the window's items, no limit, no fit
    fit: Fitted | None = None


def build(config: Config, window: Window, *, now: datetime) -> BuildResult:
    """Build the digest of one window into <paths.out>/<slug>/, atomically: one digest per language that
    has items, the workspace's language (or the first that has items) in the folder itself."""
    found, drafts = scan_and_render(config, window, now=now)
    files: dict[str, bytes] = {}
    manifests = []
    further = tuple(d.lang for d in drafts if not d.main)
    for d in drafts:
        own, manifest = assemble(config, window, found, d, now=now, languages=further if d.main else ())
        prefix = "" if d.main else outdir.lang_folder(d.lang) + "/"
        files.update({prefix + name: data for name, data in own.items()})
        manifests.append(manifest)
    folder = outdir.folder_of(config.paths.out, window.slug)
    outdir.write(folder, files)
    main, *others = manifests
    warnings = [*main.warnings, *(f"[{m.lang}] {w}" for m in others for w in m.warnings)]
    from digest.site import write_index  # imported here, as the renderer is: see scan_and_render

    try:
        # out/index.html, the archive of every build
        write_index(config.paths.out, title=config.title, cache_dir=config.paths.cache)
    except OutputError as err:  # the digest itself is built and in place: say so, do not report failure
        warnings.append(f"the digest is built, but the archive page is not up to date: {err}")
    sizes = {name: int(f["bytes"]) for name, f in main.files.items()}
    fits = tuple((d.lang, d.fit) for d in drafts if d.fit is not None)
    return BuildResult(folder, drafts[0].digest, main, sizes, tuple(warnings), found, tuple(others), fits)


def collect(config: Config, window: Window, *, now: datetime) -> tuple[Digest, Scan]:
    """Scan and select only: the items inside the window, grouped (what `digest list` shows)."""
    scanner = _scanner(config)
    scanner.start_walk(background=False)
    found = scanner.finish(window.start, window.end)
    return _select(config, window, found.items, now=now), found


def scan_and_render(config: Config, window: Window, *, now: datetime) -> tuple[Scan, list[_Drafts]]:
    """Scan the items, select the window's, render them: the items found and the rendered digests, one
    per language, the digest's own first.

    With a warm index the render starts before the scan ends: the window as the index knows it is
    rendered while forked processes list a large folder (on a 100,000-file archive the listing is most
    of the build), and rendered again only when the listing changed the window.
    """
    scanner = _scanner(config)
    try:
        scanner.start_walk(background=True)
        # The renderer (Jinja2, MJML, babel, the mail modules: ~60 ms of imports) is imported at its first
        # use, after the listing of a large archive has started, so that the two overlap.
        renderers = _Renderers(config, now)
        guess = scanner.speculate(window.start, window.end) if scanner.warm else None
        drafts = None
        # A template error here is reported by the render below, after any bad item file, as without a guess.
        with suppress(DigestError):
            drafts = _render(renderers, config, window, guess) if guess else None
        found = scanner.finish(window.start, window.end)
        if drafts is None or found.items != guess:
            drafts = _render(renderers, config, window, found.items)
    finally:
        scanner.close()  # a render that failed leaves no listing process behind
    return found, drafts


class _Renderers:
    """One Renderer per language and place, made when first needed (each holds its Jinja environment)."""

    def __init__(self, config: Config, now: datetime) -> None:
        self.config, self.now = config, now
        self.made: dict[tuple[str, bool], Renderer] = {}

    def get(self, lang: str, *, main: bool) -> Renderer:
        key = (lang, main)
        if key not in self.made:
            from digest.render import Renderer  # imported once the listing has started: scan_and_render

            self.made[key] = Renderer(self.config, now=self.now, lang=lang, main=main)
        return self.made[key]


def _scanner(config: Config) -> Scanner:
    return Scanner(
        config.paths.items, tz=config.tz, cache_dir=config.paths.cache, relative_to=config.paths.root
    )


def _select(
    config: Config,
    window: Window,
    items: list[Item],
    *,
    now: datetime,
    limit: bool = True,
    lang: str | None = None,
) -> Digest:
    limit_to = config.categories.limit if limit else 0
    order = config.texts(lang).order if lang else config.categories.order  # [languages.xx] order
    return select(items, window, now=now, order=order, limit=limit_to)


def language_of(config: Config, item: Item) -> str:
    """The digest an item goes into (see Config.digest_language)."""
    return config.digest_language(item.lang)


def _languages(config: Config, items: list[Item]) -> list[str]:
    """The languages of these items: the workspace's first, then [languages.xx] order, then the rest."""
    present = {language_of(config, i) for i in items}
    order = config.language_order()
    return [code for code in order if code in present] + sorted(present - set(order))


def _render(renderers: _Renderers, config: Config, window: Window, items: list[Item]) -> list[_Drafts]:
    """Each language's digest, rendered as the email (fitted under the budget with [email] fit) and as the
    web version (which no limit or fit cuts)."""
    drafts: list[_Drafts] = []
    now = renderers.now
    for lang in _languages(config, items):
        mine = [i for i in items if language_of(config, i) == lang]
        digest = _select(config, window, mine, now=now, lang=lang)
        if not digest.sections:
            continue  # only drafts (or embargoed items) in this language
        renderer = renderers.get(lang, main=not drafts)
        full = (
            _select(config, window, mine, now=now, limit=False, lang=lang)
            if config.categories.limit
            else digest
        )
        email, fitted = renderer.render(digest), None
        if config.email.fit:  # the email under the budget; the web version below keeps every item
            from digest.fit import fit_email

            fitted = fit_email(config, digest, email, renderer)
            digest, email = fitted.digest, fitted.email
        web = renderer.render(full, web=True)
        drafts.append(_Drafts(digest, email, web, lang, not drafts, full, fitted))
    if not drafts:
        raise EmptyWindow(
            f"no items between {_day(window.start)} and {_day(window.end, end=True)}: nothing built"
        )
    return drafts


def assemble(
    config: Config,
    window: Window,
    found: Scan,
    drafts: _Drafts,
    *,
    now: datetime,
    languages: tuple[str, ...] = (),
) -> tuple[dict[str, bytes], Manifest]:
    """The files of one language's digest, and its manifest (the last of them)."""
    from digest.message import personaliser, preview_recipient
    from digest.render import GREETING, UNSUBSCRIBE_URL, content_hash

    digest, rendered, web = drafts.digest, drafts.email, drafts.web
    parts = Parts(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        content_hash=content_hash(rendered),
        placeholders={"greeting": GREETING, "unsubscribe_url": UNSUBSCRIBE_URL},
    )
    # The preview: the very message `digest send` would make, addressed to the sender.
    maker = personaliser(config, parts, now=now, preview=True, lang=drafts.lang)
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
    warnings = [*(found.warnings if drafts.main else ()), *digest.warnings]
    if drafts.fit and not drafts.fit.fits:
        warnings.append(drafts.fit.shortfall())
    if len(files["digest.html"]) > GMAIL_CLIP_BYTES:
        warnings.append(
            f"the HTML is {len(files['digest.html']) / 1024:.0f} KB: Gmail clips messages over 102 KB "
            "(set [categories] limit, or shorten the summaries)"
        )
    folder = "" if drafts.main else outdir.lang_folder(drafts.lang) + "/"
    manifest = Manifest(
        generator=f"digest {__version__}",
        built_at=now.isoformat(),
        slug=window.slug,
        label=window.label,
        start=window.start,
        end=window.end,
        subject=rendered.subject,
        preheader=rendered.preheader,
        web_url=f"{config.base_url}{window.slug}/{folder}",
        preview_values={"greeting": values.greeting, "unsubscribe_url": values.link},
        content_hash=parts.content_hash,
        sections=tuple(
            SectionRecord(name=s.name, anchor=s.anchor, shown=len(s.items), more=s.more)
            for s in digest.sections
        ),
        items=tuple(_record(config, i) for i in digest.items),
        moved=_moved(config, drafts),
        files=outdir.hash_files(files),
        warnings=tuple(warnings),
        lang=drafts.lang,
        languages=languages,
        already_sent=tuple(sorted({i.slug for i in found.items if i.slug in window.sent}))
        if drafts.main
        else (),
        settings=content_settings(config),
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
        lang=item.lang or "",
    )


def _moved(config: Config, drafts: _Drafts) -> tuple[MovedRecord, ...]:
    """The window's items the email leaves to the web version, and whether the limit or the fit did."""
    by_fit = {i.slug for i in drafts.fit.moved} if drafts.fit else set()
    shown_ = {i.slug for i in drafts.digest.items}
    return tuple(
        MovedRecord(**vars(_record(config, i)), by="fit" if i.slug in by_fit else "limit")
        for i in drafts.full.items
        if i.slug not in shown_
    )


def changes_since(config: Config, built: outdir.Built, *, now: datetime | None = None) -> list[str]:
    """What changed in the built window's items since the build: one line per item added, edited or
    removed (empty when the folder still shows the items as they are). A send refuses a stale build.
    An item still under embargo at `now` (default: the clock) is not there yet."""
    m = built.manifest
    window = Window(m.start, m.end, m.label, m.slug, sent=frozenset(m.already_sent))
    at = now or datetime.now().astimezone()
    _digest, found = collect(config, window, now=at)
    then = {r.source: r for b in [built, *built.languages()] for r in b.manifest.built_items}
    current = [i for i in found.items if not embargoed(i, at) and i.slug not in window.sent]
    now_ = {r.source: r for r in (_record(config, i) for i in current)}
    lines = [f"added:   {src}" for src in sorted(now_.keys() - then.keys())]
    lines += [f"edited:  {src}" for src in sorted(now_.keys() & then.keys()) if now_[src] != then[src]]
    lines += [f"removed: {src}" for src in sorted(then.keys() - now_.keys())]
    return lines


def settings_since(config: Config, built: outdir.Built) -> list[str]:
    """The settings that shape the digest or its messages and differ from those of the build (named as
    digest.toml names them); none for an older build, which did not record them."""
    then = built.manifest.settings
    return [] if then is None else changed_settings(then, content_settings(config))


def stale_message(
    folder: Path,
    changes: list[str],
    *,
    what: str,
    settings: list[str] | None = None,
    rebuild: str = "digest build",
) -> str:
    """The refusal of a send (or a test, or a dry run) of a build the items or the settings have moved on
    from; `rebuild` is the command that builds the same window again."""
    said = []
    if changes:
        listed = "\n".join(f"  {c}" for c in changes[:20])
        more = f"\n  ... and {len(changes) - 20} more" if len(changes) > 20 else ""
        said.append(f"is out of date: the window's items changed since it was built:\n{listed}{more}\n")
    if settings:
        said.append(
            f"{'was also' if changes else 'was'} built with other settings than digest.toml and the "
            f"environment give now: {', '.join(settings)}\n"
        )
    return (
        f"{shown(folder)}/ {'It '.join(said)}"
        f"Rebuild it (`{rebuild}`) and check it, or pass --as-built to {what} the folder as it is."
    )


def _day(dt: datetime, *, end: bool = False) -> str:
    return (dt - timedelta(microseconds=1) if end else dt).date().isoformat()

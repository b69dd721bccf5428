"""Items + window -> out/<slug>/: digest.html, index.html (web version), digest.txt, digest.eml,
digest.mjml, manifest.json. Written atomically: a failed build leaves the old folder.

The manifest and digest.mjml hold all `digest check` reads: it lints the build, never the items or
templates as they are now.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digest import __version__
from digest.config import Config, parse_address
from digest.errors import DigestError, EmptyWindow, OutputError
from digest.fsutil import atomic_write, rel_path
from digest.items import Item, Scan, Scanner, scan
from digest.journal import FolderBusy, folder_lock, lock_path, recover_folder, sending_now
from digest.message import build_message
from digest.render import GREETING, UNSUBSCRIBE_URL, Rendered, Renderer, content_hash, personalise
from digest.select import Digest, select
from digest.shots import SHOT_FILES
from digest.site import write_index
from digest.window import Window

GMAIL_CLIP_BYTES = 102 * 1024
# Files a build writes; anything else in out/<slug>/ (a send journal, say) is carried over on rebuild.
# The screenshots count as build files: a rebuild drops them, so none is left showing an older digest.
BUILD_FILES = (
    "digest.html",
    "index.html",
    "digest.txt",
    "digest.eml",
    "manifest.json",
    "digest.mjml",
    "digest.parts.json",
    *SHOT_FILES,
)


@dataclass(frozen=True)
class BuildResult:
    """What a build produced."""

    folder: Path
    digest: Digest
    rendered: Rendered
    sizes: dict[str, int]
    content_hash: str
    warnings: tuple[str, ...]
    scan: Scan


def collect(config: Config, window: Window) -> tuple[Digest, Scan]:
    """Load the items inside the window and group them."""
    found = scan(
        config.items_dir,
        tz=config.tz,
        start=window.start,
        end=window.end,
        cache_dir=config.cache_dir,
        relative_to=config.root,
    )
    digest = select(found.items, window, order=config.category_order, limit=config.category_limit)
    return digest, found


def _render(
    renderer: Renderer, config: Config, window: Window, items: list[Item]
) -> tuple[Digest, Rendered, Rendered]:
    """The digest of these items, rendered as the email and as the web version (which no limit cuts)."""
    digest = select(items, window, order=config.category_order, limit=config.category_limit)
    if not digest.sections:
        raise EmptyWindow(
            f"no items between {_day(window.start)} and {_day(window.end, end=True)}: nothing built"
        )
    full = select(items, window, order=config.category_order) if config.category_limit else digest
    return digest, renderer.render(digest), renderer.render(full, web=True)


def preview_values(config: Config) -> dict[str, str]:
    """What the built (not yet personalised) digest shows where a recipient's values go."""
    return {
        "greeting": "Hello,",
        "unsubscribe_url": f"mailto:{config.sender.addr_spec}?subject=unsubscribe",
    }


def build(
    config: Config,
    window: Window,
    *,
    now: datetime,
    out_dir: Path | None = None,
) -> BuildResult:
    """Build the digest of one window into <out_dir>/<slug>/, atomically."""
    renderer = Renderer(config, now=now)
    scanner = Scanner(config.items_dir, tz=config.tz, cache_dir=config.cache_dir, relative_to=config.root)
    # With a warm index, render the window as the index knows it while a second process lists the folder
    # (on a 100,000-file archive that listing is a third of the build); then check, and render again only
    # when the listing found the window changed.
    scanner.start_walk(background=True)
    guess = scanner.speculate(window.start, window.end) if scanner.warm else None
    drafts = None
    # A template error here is reported by the render below, after any bad item file, as without a guess.
    with suppress(DigestError):
        drafts = _render(renderer, config, window, guess) if guess else None
    found = scanner.finish(window.start, window.end)
    if drafts is None or found.items != guess:
        drafts = _render(renderer, config, window, found.items)
    digest, rendered, web = drafts
    html, text = personalise(rendered, **preview_values(config))
    digest_hash = content_hash(rendered)
    sender = config.sender
    msg = build_message(
        subject=rendered.subject,
        sender=sender,
        reply_to=parse_address(config.reply_to, what="email.reply_to") if config.reply_to else None,
        html=html,
        text=text,
        date=now,
        message_id=f"<digest.{window.slug}.{digest_hash[:16]}@{sender.domain}>",
    )
    files: dict[str, bytes] = {
        "digest.html": html.encode(),
        "index.html": web.html.encode(),
        "digest.txt": text.encode(),
        "digest.eml": msg.as_bytes(),
        "digest.mjml": rendered.mjml.encode(),  # what was compiled: `digest check` lints it
    }
    # The un-personalised parts, so that `digest send` sends exactly what was built and reviewed.
    # The placeholders are per process (render.py), so the file names the ones its html and text contain.
    parts = {
        "content_hash": digest_hash,
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "placeholders": {"greeting": GREETING, "unsubscribe_url": UNSUBSCRIBE_URL},
    }
    files["digest.parts.json"] = json.dumps(parts, ensure_ascii=False).encode()
    sizes = {name: len(data) for name, data in files.items()}
    warnings = list(digest.warnings)
    if sizes["digest.html"] > GMAIL_CLIP_BYTES:
        warnings.append(
            f"the HTML is {sizes['digest.html'] / 1024:.0f} KB: Gmail clips messages over 102 KB "
            "(set [categories] limit, or shorten the summaries)"
        )
    root = config.root
    manifest: dict[str, Any] = {
        "generator": f"digest {__version__}",
        "built_at": now.isoformat(),
        "window": {
            "slug": window.slug,
            "label": window.label,
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
        },
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "web_url": f"{config.base_url}{window.slug}/",
        # What digest.html shows where each recipient's own values go (`digest check` looks for them).
        "preview_values": preview_values(config),
        "content_hash": digest_hash,
        "item_count": len(digest.items),
        "sections": [
            {"name": s.name, "anchor": s.anchor, "shown": len(s.items), "more": s.more}
            for s in digest.sections
        ],
        "items": [
            {
                "slug": i.slug,
                "title": i.title,
                "date": i.when.date().isoformat() if i.all_day else i.when.isoformat(),
                "category": i.category,
                "url": i.url,
                "source": rel_path(config.items_dir / i.source, root),
                # The item as built, so that `digest check` maps a finding to it without reading items/.
                "summary": i.summary,
                "body": i.body,
                "image": i.image,
                "image_alt": i.image_alt,
            }
            for i in digest.items
        ],
        "files": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        },
        "warnings": warnings,
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    sizes["manifest.json"] = len(files["manifest.json"])
    folder = (out_dir or config.out_dir) / window.slug
    try:
        # Held from the check to the swap: a send starting meanwhile waits, then opens the new folder.
        with folder_lock(folder, exclusive=True):
            busy = sending_now(folder)
            if busy is not None:  # the swap would leave that send writing its journal into the old folder
                raise OutputError(
                    f"{busy}: `digest send` is sending this digest right now; build again when it is done"
                )
            write_folder(folder, files)
    except FolderBusy:
        busy = sending_now(folder)
        raise OutputError(
            f"{busy}: `digest send` is sending this digest right now; build again when it is done"
            if busy is not None
            else f"{lock_path(folder)}: a `digest send` or another `digest build` is using {folder} "
            "right now; build again when it is done"
        ) from None
    write_index(folder.parent, title=config.title)  # out/index.html, the archive of every build
    return BuildResult(folder, digest, rendered, sizes, digest_hash, tuple(warnings), found)


def _day(dt: datetime, *, end: bool = False) -> str:
    return (dt - timedelta(microseconds=1) if end else dt).date().isoformat()


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Write files into a fresh sibling folder, then swap it in; files not written by a build are kept.

    Call it holding the folder's lock (journal.folder_lock). It first puts back what a build killed
    between its two renames left aside.
    """
    parent = folder.parent
    recover_folder(folder)  # a build killed between the two renames left the live folder aside
    for orphan in parent.glob(f".{folder.name}.new-*"):  # a build killed while writing (we hold the lock)
        shutil.rmtree(orphan, ignore_errors=True)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the build folder is meant to be published
    except OSError as err:
        raise OutputError(f"{parent}: cannot create the output folder: {err.strerror}") from err
    old: Path | None = None
    try:
        for name, data in files.items():
            atomic_write(stage / name, data)
        if folder.exists():
            for entry in folder.iterdir():
                if entry.name not in BUILD_FILES and not entry.name.startswith("."):
                    target = stage / entry.name
                    if entry.is_dir():
                        shutil.copytree(entry, target)
                    else:
                        shutil.copy2(entry, target)
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=parent))
            os.replace(folder, old / folder.name)
        os.replace(stage, folder)
    except OSError as err:
        shutil.rmtree(stage, ignore_errors=True)
        if old is not None and not folder.exists() and (old / folder.name).exists():
            os.replace(old / folder.name, folder)
        raise OutputError(f"{folder}: cannot write the build: {err.strerror or err}") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fd = os.open(parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

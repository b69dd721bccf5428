"""What `digest check` lints: the files a build wrote in out/<slug>/ and its manifest, and where a finding
is fixed (an item file, or a template and its line)."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, field
from pathlib import Path

from digest import outdir
from digest.config import Config
from digest.fsutil import rel_path
from digest.outdir import ItemRecord, Manifest
from digest.render import default_templates_dir
from digest.window import Window


@dataclass(frozen=True, kw_only=True)
class BuiltDigest:
    """The built digest, as the rules see it: the email's HTML and text, the web version, the MJML that was
    compiled, the manifest; and the workspace, to name the file where a finding is fixed."""

    manifest: Manifest
    html: str  # digest.html: the email as sent, preview values filled in
    text: str  # digest.txt
    mjml: str  # digest.mjml
    web_html: str = ""  # index.html, the web version ("" when there is none to lint)
    root: Path = field(default_factory=Path.cwd)
    templates_dir: Path | None = None
    config_name: str = "digest.toml"

    @property
    def subject(self) -> str:
        """The subject as built."""
        return self.manifest.subject

    @property
    def preheader(self) -> str:
        """The preheader as built."""
        return self.manifest.preheader

    @property
    def web_url(self) -> str:
        """Where the web version is published."""
        return self.manifest.web_url

    @property
    def unsubscribe_url(self) -> str:
        """What digest.html shows where each recipient's own unsubscribe address goes."""
        return self.manifest.preview_values.get("unsubscribe_url", "")

    @property
    def items(self) -> tuple[ItemRecord, ...]:
        """The items as they were built."""
        return self.manifest.items

    def template(self, name: str, *needles: str) -> str:
        """Where a template problem is fixed: the workspace's own template if it has one, else the packaged
        default; with the line of the first needle found (tried in order), if any is."""
        candidates = []
        if self.templates_dir is not None and (self.templates_dir / name).is_file():
            candidates.append(self.templates_dir / name)
        candidates.append(default_templates_dir() / name)
        for needle in needles:
            for path in candidates:
                line = find_line(path, needle)
                if line:
                    return self._shown(path, line)
        return self._shown(candidates[0], None)

    def _shown(self, path: Path, line: int | None) -> str:
        at = f":{line}" if line else ""
        if self.templates_dir is not None and path.parent.resolve() == self.templates_dir.resolve():
            return rel_path(path, self.root) + at
        return f"default/{path.name}{at} (the packaged default: copy it to templates/ to change it)"

    def item_for(self, *needles: str) -> ItemRecord | None:
        """The item whose fields contain one of the needles (normalised), if any."""
        found = self._item_field(needles)
        return found[0] if found else None

    def where(self, template: str, *needles: str) -> str:
        """The item file holding one of the needles (and in which field), else the template.

        The item file is named, not read: it may have changed since the build.
        """
        found = self._item_field(needles)
        return f"{found[0].source} ({found[1]})" if found else self.template(template, *needles)

    def _item_field(self, needles: tuple[str, ...]) -> tuple[ItemRecord, str] | None:
        for needle in needles:
            for item in self.items:
                field_name = field_of(item, needle)
                if field_name:
                    return item, field_name
        return None


def field_of(item: ItemRecord, needle: str) -> str | None:
    """The name of the item's field (title, summary, body, url, image) whose text holds the needle."""
    n = norm(needle)
    if not n:
        return None
    fields = {
        "title": item.title,
        "summary": item.summary,
        "body": item.body,
        "url": item.url or "",
        "image": item.image or "",
    }
    return next((name for name, text in fields.items() if text and n in norm(text)), None)


def load_built(config: Config, window: Window, *, lang: str | None = None) -> BuiltDigest:
    """Read what the build wrote in out/<slug>/ (or, with `lang`, out/<slug>/<lang>/, a further language's
    digest); never items/ or the templates as they are now.

    NotBuilt when the window has not been built, OutputError when a file of the build is missing or damaged.
    """
    folder = outdir.folder_of(config.paths.out, window.slug)
    built = outdir.load(folder / outdir.lang_folder(lang) if lang else folder)
    config_file = config.paths.config_file
    return BuiltDigest(
        manifest=built.manifest,
        html=built.read_text("digest.html"),
        text=built.read_text("digest.txt"),
        mjml=built.read_text("digest.mjml"),
        web_html=built.read_text("index.html"),
        root=config.paths.root,
        templates_dir=config.paths.templates,
        config_name=rel_path(config_file, config.paths.root) if config_file else "digest.toml",
    )


def norm_space(text: str) -> str:
    """Runs of white space as one space, none at the ends."""
    return " ".join(text.split())


def norm(text: str) -> str:
    """Text as compared between the parts: entities decoded, spaces normalised, case folded."""
    return norm_space(htmllib.unescape(text)).casefold()


def short(text: str, limit: int = 60) -> str:
    """A text quoted for a message, cut to `limit` characters."""
    text = norm_space(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def find_line(path: Path, needle: str) -> int | None:
    """The line of a file where the needle first appears (exact case first), outside Jinja comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    n = needle.strip()
    if not n:
        return None
    # Jinja comments are blanked (keeping their line breaks): a mention in a comment is not the place.
    text = re.sub(r"\{#.*?#\}", lambda m: "\n" * m[0].count("\n"), text, flags=re.S)
    idx = text.find(n)
    if idx < 0:
        idx = text.casefold().find(n.casefold())
    return text.count("\n", 0, idx) + 1 if idx >= 0 else None

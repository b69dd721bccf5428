"""`digest init`: a new workspace (config, templates, one example item) that builds at once."""

from __future__ import annotations

import shutil
from datetime import date
from importlib import resources
from pathlib import Path

from digest.config import CONFIG_NAME
from digest.errors import DigestError
from digest.render import default_templates_dir

IGNORED = "out/\n.digest-cache/\nsuppressions.sqlite*\nsubscribers*.csv\n"


def create_workspace(folder: Path, *, today: date) -> list[Path]:
    """Create folder/digest.toml, templates/, items/<example>.md and .gitignore; refuse to overwrite."""
    config = folder / CONFIG_NAME
    if config.exists():
        raise DigestError(f"{config} already exists: {folder} is a digest workspace already")
    skeleton = resources.files("digest") / "skeleton"
    created: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config.write_text((skeleton / "digest.toml").read_text(encoding="utf-8"), encoding="utf-8")
        created.append(config)
        templates = folder / "templates"
        templates.mkdir(exist_ok=True)
        for source in sorted(default_templates_dir().glob("*.j2")):
            target = templates / source.name
            if not target.exists():
                shutil.copyfile(source, target)
                created.append(target)
        items = folder / "items"
        items.mkdir(exist_ok=True)
        example = items / f"{today.isoformat()}-welcome.md"
        text = (skeleton / "welcome.md").read_text(encoding="utf-8").replace("{date}", today.isoformat())
        example.write_text(text, encoding="utf-8")
        created.append(example)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            # What holds subscribers' addresses stays out of git history: the lists, the suppressions,
            # and out/ (each sent digest's journal is in its folder).
            ignore.write_text(IGNORED, encoding="utf-8")
            created.append(ignore)
    except OSError as err:
        raise DigestError(f"{folder}: cannot create the workspace: {err.strerror or err}") from err
    return created

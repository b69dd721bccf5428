"""`digest import`: new item files from RSS/Atom feeds (digest/feeds.py)."""

from __future__ import annotations

import click

from digest.cli.base import State, fail_cleanly, main
from digest.errors import DigestError
from digest.fsutil import shown
from digest.words import plural


@main.command("import")
@click.argument("feeds", nargs=-1, metavar="FEED...")
@click.option(
    "--category", default="", help="Category of these feeds' entries the [import] map does not place."
)
@click.option(
    "--language", default="", help="Language of these feeds' entries (fr, es...); default: the feed's own."
)
@click.option("--dry-run", is_flag=True, help="List the item files it would write; write nothing.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=20.0, show_default=True, help="Seconds.")
@click.pass_obj
@fail_cleanly
def import_(
    state: State, /, feeds: tuple[str, ...], category: str, language: str, dry_run: bool, timeout: float
) -> None:
    """Write new item files from FEED... (URLs or files; none: the [[import.feeds]] of digest.toml)."""
    config = state.config()
    from digest.feeds import Source, configured_sources, import_feeds  # feedparser: only for this command

    if language.strip():
        from digest.config.values import language as check_language

        try:
            check_language(language)
        except ValueError as err:
            raise DigestError(f"--language: {err}") from None
    sources = [
        Source(location=f, category=category.strip(), language=language.strip()) for f in feeds
    ] or configured_sources(config)
    if not sources:
        raise DigestError(
            "no feed to import: give FEED... (a URL or a file) or list [[import.feeds]] in digest.toml"
        )
    reports = import_feeds(config, sources, now=state.now, dry_run=dry_run, timeout=timeout)
    failed = []
    for report in reports:
        for item in report.written:
            click.echo(f"{'would write' if dry_run else 'wrote'} {shown(item.path)}: {item.title}")
        for note in report.notes:
            state.warn(note)
        if report.error:
            failed.append(report.error)
        elif report.not_modified:
            state.say(f"{report.source}: not modified since the last import")
        else:
            new = plural(len(report.written), "new item")
            state.say(f"{report.source}: {new}, {report.known} already imported")
    if failed:
        raise DigestError("\n".join(failed) if len(failed) == 1 else "\n".join(["feeds failed:", *failed]))

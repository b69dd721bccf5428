"""The commands that build and look: build, list, new, init, check, shots, preview. Each parses its options
and makes one library call."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from digest import backdated
from digest.cli.base import State, fail_cleanly, get_window, main, window_options
from digest.config import Config, load_config
from digest.errors import DigestError, NotBuilt
from digest.fsutil import rel_path, shown
from digest.outdir.files import lang_folder
from digest.window import Window
from digest.words import plural


@main.command()
@window_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Put the <slug>/ folder under this folder instead of out/.",
)
@click.option("--screenshots", is_flag=True, help="Also take the four screenshots (see `digest shots`).")
@click.option(
    "--import",
    "import_first",
    is_flag=True,
    help="First pull the [[import.feeds]] of digest.toml, as `digest import` does (a failed feed: warning).",
)
@click.pass_obj
@fail_cleanly
def build(
    state: State,
    /,
    out_dir: Path | None,
    screenshots: bool = False,
    import_first: bool = False,
    **window: Any,
) -> None:
    """Build the digest of a window into out/<slug>/ (default: last month)."""
    from digest.build import build as run_build

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    if import_first:
        _import_feeds(state, config)
    with backdated.said_when_empty(config, win, state.warn):
        result = run_build(config, win, now=state.now)
    for warning in result.warnings:
        state.warn(warning)
    backdated.warn(config, win, state.warn)  # after the build's scan: the index knows every item
    for lang, fitted in result.fits:
        said = f"{lang}: {fitted.summary()}" if result.languages else fitted.summary()
        state.say(said, level=0 if fitted.moved else 1)
    state.say(f"scanned {result.scan.total_files} item files, parsed {result.scan.parsed_files}", level=1)
    counted = _counted(result.digest.items, result.digest.sections, result.digest.total)
    sizes = f"html {_kb(result.sizes['digest.html'])}, text {_kb(result.sizes['digest.txt'])}"
    lang = f"{result.manifest.lang}: " if result.languages else ""
    state.say(f"{lang}{counted} -> {shown(result.folder)}/ ({sizes})")
    for other in result.languages:  # one line per further language: "fr: 3 items ... -> out/<slug>/fr/"
        html, text = other.files["digest.html"]["bytes"], other.files["digest.txt"]["bytes"]
        total = other.item_count + len(other.moved)
        state.say(
            f"{other.lang}: {_counted(other.items, other.sections, total)} -> "
            f"{shown(result.folder / lang_folder(other.lang))}/ (html {_kb(html)}, text {_kb(text)})"
        )
    if screenshots:
        _screenshots(state, config, result.folder)


@main.command(name="list")
@window_options
@click.option(
    "--explain", is_flag=True, help="Every item file, in or out, and why (drafts, window, limit, fit...)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="With --explain: JSON for CI (schema in the reference)."
)
@click.pass_obj
@fail_cleanly
def list_(state: State, /, explain: bool = False, as_json: bool = False, **window: Any) -> None:
    """List the items a build of this window would include."""
    config = state.config()
    win = get_window(state, config, **window)
    if explain or as_json:
        _explain(state, config, win, as_json=as_json, after_last_send=bool(window.get("since_last_send")))
        return
    from digest.build import collect, language_of

    digest, found = collect(config, win, now=state.now)
    for warning in (*found.warnings, *digest.warnings):
        state.warn(warning)
    backdated.warn(config, win, state.warn)
    placed = [(s.name, i, language_of(config, i)) for s in digest.sections for i in s.items]
    # Which digest each item goes into, when the window has more than one (a one-language list is as it was).
    several = len({lang for _, _, lang in placed}) > 1
    rows = [
        (
            f"{i.when.date().isoformat()}  {lang}" if several else i.when.date().isoformat(),
            section,
            i.title,
            rel_path(config.paths.items / i.source, config.paths.root),
        )
        for section, i, lang in placed
    ]
    state.say(f"{win.label}: {plural(len(rows), 'item')}")
    if not rows:
        return
    cat_w = max(len(r[1]) for r in rows)
    title_w = max(len(r[2]) for r in rows)
    if sys.stdout.isatty():  # fit a terminal; a pipe gets whole titles
        width = shutil.get_terminal_size().columns
        cat_w = min(cat_w, 24)
        file_w = max(len(r[3]) for r in rows)
        title_w = min(title_w, max(20, width - len(rows[0][0]) - 2 - cat_w - 2 - 2 - file_w))
    for day, cat, title, file in rows:
        click.echo(f"{day}  {_fit(cat, cat_w)}  {_fit(title, title_w)}  {file}")


def _import_feeds(state: State, config: Config) -> None:
    """`digest import` with no argument, before a build: what is there still builds when a feed fails."""
    from digest.feeds import configured_sources, import_feeds  # feedparser: only when asked

    sources = configured_sources(config)
    if not sources:
        raise DigestError(
            "--import: no [[import.feeds]] in digest.toml: list the feeds to pull, or drop --import"
        )
    for report in import_feeds(config, sources, now=state.now):
        for item in report.written:
            state.say(f"wrote {shown(item.path)}: {item.title}", level=1)
        for note in report.notes:
            state.warn(note)
        if report.error:
            state.warn(f"{report.error} (building with the items already there)")
        elif report.not_modified:
            state.say(f"{report.source}: not modified since the last import", level=1)
        else:
            state.say(
                f"{report.source}: {plural(len(report.written), 'new item')}, {report.known} already imported"
            )


def _explain(state: State, config: Config, win: Window, *, as_json: bool, after_last_send: bool) -> None:
    from digest.explain import explain, format_explanation

    found = explain(config, win, now=state.now, after_last_send=after_last_send)
    for warning in found.warnings:
        state.warn(warning)
    if as_json:
        click.echo(found.to_json())
        return
    counts = ", ".join(f"{found.count(s)} {s}" for s in ("in", "online", "out"))
    state.say(f"{win.label}: {plural(len(found.verdicts), 'item file')} ({counts})")
    if found.verdicts:
        click.echo(format_explanation(found))


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


@main.command()
@click.argument("title")
@click.option("--category", required=True, help="The item's category, e.g. News.")
@click.option("--summary", default="", help="One or two sentences (you can also write them in the file).")
@click.option("--url", default=None, help="The item's web page.")
@click.pass_obj
@fail_cleanly
def new(state: State, /, title: str, category: str, summary: str, url: str | None) -> None:
    """Create an item file dated today, ready to edit."""
    from digest.newitem import new_item

    config = state.config()
    today = state.now.astimezone(config.tz).date()
    path = new_item(config, title=title, category=category, summary=summary, url=url, today=today)
    click.echo(shown(path))
    if not summary.strip():
        state.say("Write the summary in the file before the next build (it is required).")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
@fail_cleanly
def init(state: State, /, folder: Path) -> None:
    """Create a new workspace in FOLDER: digest.toml, templates/, items/ with one example item."""
    from digest.workspace import create_workspace

    created = create_workspace(folder, today=state.now.date())
    for path in created:
        state.say(f"created {shown(path)}", level=1)
    step = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    state.say(f"New digest workspace in {shown(folder)}. Next: {step}digest build --last 30d")


def _counted(items: Sequence[object], sections: Sequence[object], total: int) -> str:
    """'12 items in 3 categories', or with the limit or the fit '27 of 160 items in 4 categories in the
    email (133 in the web version only)'."""
    n, c = len(items), plural(len(sections), "category", "categories")
    if n == total:
        return f"{plural(n, 'item')} in {c}"
    return f"{n} of {plural(total, 'item')} in {c} in the email ({total - n} in the web version only)"


def _screenshots(state: State, config: Config, folder: Path) -> None:
    """Take the screenshots of a built folder and refresh the archive page, whatever they show."""
    from digest import outdir
    from digest.shots import take_screenshots
    from digest.site import write_index

    state.say("taking screenshots in headless Chromium ...", level=1)
    # Each language's digest too (out/<slug>/fr/), its web links mapped to its own folder.
    places = [(folder, folder.name)] + [
        (folder / lang_folder(code), f"{folder.name}/{lang_folder(code)}")
        for code in outdir.load(folder).manifest.languages
    ]
    try:
        taken = [take_screenshots(where, base_url=config.base_url, slug=slug) for where, slug in places]
    finally:
        if any(folder.glob("shot-*.png")):
            write_index(config.paths.out, title=config.title, cache_dir=config.paths.cache)
    for shots in taken:
        for url in shots.remote_images:
            state.say(f"not checked (remote image, no network in the screenshot browser): {url}", level=1)
        state.say(f"screenshots -> {', '.join(shown(p) for p in shots.files)}")


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.pass_obj
@fail_cleanly
def shots(state: State, /, out_dir: Path | None, **window: Any) -> None:
    """Screenshot a built digest (375/640 px, light/dark); fail on sideways scroll or a broken image."""
    from digest import outdir

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    with _how_to_build(state, config, win):
        built = outdir.load(outdir.folder_of(config.paths.out, win.slug))
    _screenshots(state, config, built.folder)


@contextmanager
def _how_to_build(state: State, config: Config, win: Window) -> Iterator[None]:
    """A window not built yet: the error says the very build to run (`digest build --month 2026-06`)."""
    try:
        yield
    except NotBuilt as err:
        from digest.presend import rebuild_command

        raise NotBuilt(err.folder, rebuild_command(config, win, now=state.now)) from None


@main.command()
@window_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Instead of out/.")
@click.option("--strict", is_flag=True, help="Fail on warnings too (exit 1).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for CI).")
@click.option(
    "--spam",
    is_flag=True,
    help="Also score the message as sent in SpamAssassin (local rules); its own points are warnings.",
)
@click.pass_obj
@fail_cleanly
def check(
    state: State, /, out_dir: Path | None, strict: bool, as_json: bool, spam: bool = False, **window: Any
) -> None:
    """Lint a built digest: exit 1 on errors (with --strict, on warnings too)."""
    from dataclasses import replace

    from digest.check import check as run_check
    from digest.check import format_report

    config = state.config(**{"paths.out": out_dir})
    win = get_window(state, config, **window)
    with _how_to_build(state, config, win):
        report = run_check(config, win)
    if spam:
        from digest.check.spam import spam_check, spam_findings

        own = []
        for n, (lang, scored) in enumerate(spam_check(config, win, now=state.now)):
            said = f" [{lang}]" if n else ""  # a further language's message, as the lint names it
            for hit in scored.hits:
                whose = "" if hit.ours else "  (environment, not ours)"
                state.say(f"spamassassin{said} {hit.points:5.1f}  {hit.rule}: {hit.description}{whose}")
            state.say(f"spamassassin{said}: {scored.score:g} points, {scored.own_points:g} of our own making")
            own += spam_findings(scored, templates_dir=config.paths.templates, lang=lang if n else "")
        report = replace(report, findings=(*report.findings, *own))
    folder = shown(report.folder)
    if as_json:
        click.echo(report.as_json(strict=strict))
    elif report.findings:
        click.echo(format_report(report))
    failed = report.failed(strict=strict)
    e, w = report.errors, report.warnings
    counts = f"{plural(e, 'error')}, {plural(w, 'warning')}"
    verdict = "failed" if failed else "passed"
    state.say(f"check {verdict}{' (strict)' if strict else ''}: {counts} in {folder}/")
    if failed:
        sys.exit(1)


@main.command()
@window_options
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="The port (default: a free one).")
@click.pass_obj
@fail_cleanly
def preview(state: State, /, port: int, **window: Any) -> None:
    """Serve a live preview on 127.0.0.1; it rebuilds when an item, a template or the config changes."""
    from contextlib import suppress

    from digest.preview import Preview

    config = state.config()  # fails now, before serving, if there is no config at all
    config_path = config.paths.config_file
    get_window(state, config, **window)  # a bad option too: no edit of a watched file could fix it
    try:
        server = Preview(
            load=lambda: load_config(config_path),
            window=lambda config: get_window(state, config, **window),
            now=lambda: state.now,
            port=port,
            say=state.say,
        )
    except OSError as err:
        raise DigestError(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from err
    state.say(f"Preview on {server.url}  (Ctrl-C to stop)", level=-1)
    with suppress(KeyboardInterrupt):  # Ctrl-C; on SIGTERM or SIGHUP it returns
        server.serve_forever()
    state.say("Stopped.", level=-1)

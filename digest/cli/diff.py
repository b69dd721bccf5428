"""digest diff: what a change does to the email on screen, between two built folders."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digest.cli.base import State, fail_cleanly, main
from digest.fsutil import shown

_FOLDER = click.Path(path_type=Path, file_okay=False)


@main.command(name="diff")
@click.argument("old_dir", type=_FOLDER)
@click.argument("new_dir", type=_FOLDER)
@click.option(
    "--out", "out_dir", type=_FOLDER, help="Where the images and index.html go (default: NEW_DIR/diff/)."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 100),
    default=0.1,
    show_default=True,
    help="Fail (exit 1) when a screenshot has more than this percentage of its pixels changed.",
)
@click.pass_obj
@fail_cleanly
def diff_(state: State, /, old_dir: Path, new_dir: Path, out_dir: Path | None, threshold: float) -> None:
    """Screenshot two built folders (375/640 px, light/dark) and show what changed between them."""
    from digest.diff import diff

    state.say("taking screenshots of both in headless Chromium ...", level=1)
    report = diff(old_dir, new_dir, out=out_dir)
    for shot in report.shots:
        over = "  (over the threshold)" if shot.share > threshold else ""
        click.echo(f"{shot.name}: {shot.share:.3f}% of the pixels changed{over}")
    failed = report.failed(threshold)
    verdict = f"changed beyond {threshold:g}%" if failed else f"no change beyond {threshold:g}%"
    state.say(f"diff: {verdict}; images and index.html in {shown(report.out)}/")
    if failed:
        sys.exit(1)

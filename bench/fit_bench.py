"""Benchmark [email] fit: a 300-item month built with fit = true against the same month built without it.

The figure is a ratio against the unfitted build of the same items, measured in the same run, interleaved,
median of N runs (absolute seconds mean little on a noisy machine). Also reported: the email's HTML before
and after the fit, how many items moved, and how many renders the fit needed.
Run: ./dev bench fit [--runs 5] [--items 300]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work" / "fit"
DIGEST = [sys.executable, "-m", "digest", "--now", "2021-04-15T12:00:00+00:00"]
CATEGORIES = ("News", "Events", "Reports", "Interviews")
CONFIG = """\
title = "Fit bench"
language = "en"
timezone = "UTC"
base_url = "https://example.org/d/"
subject = "{{{{ title }}}}: {{{{ window.label }}}}"

[email]
from = "News <news@example.org>"
fit = {fit}

[categories]
order = ["News", "Events", "Reports", "Interviews"]
"""


def workspace(folder: Path, n: int, *, fit: bool) -> Path:
    """A workspace with n items in March 2021, summaries of a usual length, every 25th pinned."""
    shutil.rmtree(folder, ignore_errors=True)
    items = folder / "items"
    items.mkdir(parents=True)
    (folder / "digest.toml").write_text(CONFIG.format(fit=str(fit).lower()), encoding="utf-8")
    for k in range(n):
        day = 1 + k % 28
        summary = f"Summary of item {k}. " + "The co-operative movement met to discuss the year ahead. " * 4
        (items / f"2021-03-{day:02d}-item-{k:04d}.md").write_text(
            f"---\ntitle: Item {k} on co-operative matters\n"
            f"date: 2021-03-{day:02d}T{k % 24:02d}:00:00+00:00\n"
            f"category: {CATEGORIES[k % 4]}\nsummary: {summary}\nurl: https://example.org/news/{k}\n"
            f"pinned: {str(k % 25 == 7).lower()}\n---\n",
            encoding="utf-8",
        )
    return folder


def build(folder: Path) -> tuple[float, str]:
    """One `digest build` as a process: (seconds, its stderr)."""
    start = time.perf_counter()
    done = subprocess.run(
        [*DIGEST, "build", "--month", "2021-03"], cwd=folder, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, done.stderr


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    plain = workspace(WORK / "plain", args.items, fit=False)
    fitted = workspace(WORK / "fitted", args.items, fit=True)
    build(plain), build(fitted)  # warm-up: the items index, Jinja's bytecode cache
    times: dict[str, list[float]] = {"plain": [], "fitted": []}
    said = ""
    for _ in range(args.runs):
        times["plain"].append(build(plain)[0])
        seconds, said = build(fitted)
        times["fitted"].append(seconds)
    before = (plain / "out" / "2021-03" / "digest.html").stat().st_size
    after = (fitted / "out" / "2021-03" / "digest.html").stat().st_size
    manifest = json.loads((fitted / "out" / "2021-03" / "manifest.json").read_bytes())
    renders = re.search(r"(\d+) renders", said)
    p, f = statistics.median(times["plain"]), statistics.median(times["fitted"])
    print(f"{args.items} items, median of {args.runs} runs, interleaved")
    print(f"  unfitted build: {p * 1000:.0f} ms, email HTML {before / 1024:.1f} KB")
    print(f"  fitted build:   {f * 1000:.0f} ms, email HTML {after / 1024:.1f} KB")
    print(f"  fitted / unfitted: {f / p:.2f}x")
    moved = len(manifest["moved"])
    print(f"  moved to the web version: {moved} of {args.items}; renders: {renders[1] if renders else '?'}")


if __name__ == "__main__":
    main()

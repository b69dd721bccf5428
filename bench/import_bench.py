"""`digest import` of a 1,000-entry RSS feed, against feedparser parsing the same file alone.

    ./dev bench import [--entries 1000] [--runs 5]

A generated feed (HTML descriptions in CDATA, a category each) in a temporary workspace. Each run,
interleaved: the baseline (a Python process that imports feedparser and parses the file: what any feed
importer built on it pays), `digest import` into an empty items folder (parse, HTML to text, one item file
per entry, the de-duplication index), and the same import again when every entry is already there.
Medians, and ratios against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOW = "2021-04-15T12:00:00+00:00"


def feed(entries: int) -> str:
    items = "".join(
        f"<item><title>Entry {k} about co-operatives</title><link>https://example.org/n/{k}</link>"
        f"<guid>id-{k}</guid><pubDate>Mon, {1 + k % 28:02d} Mar 2021 {k % 24:02d}:00:00 +0000</pubDate>"
        f"<category>News</category><description><![CDATA[<p>The <b>co-operative</b> movement met, item {k}. "
        + "They talked about the year ahead. " * 5
        + "</p>]]></description></item>"
        for k in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link><description>D</description>{items}</channel></rss>"
    )


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="digest-import-bench-"))
    try:
        (root / "feed.xml").write_text(feed(args.entries), encoding="utf-8")
        (root / "digest.toml").write_text(
            'title = "T"\ntimezone = "UTC"\n[import]\ndefault_category = "News"\n'
        )
        py = sys.executable
        parse = [py, "-c", "import feedparser, sys; feedparser.parse(sys.argv[1])", "feed.xml"]
        digest = [py, "-m", "digest", "-q", "--now", NOW, "import", "feed.xml"]
        base, first, again = [], [], []
        for _ in range(args.runs):
            shutil.rmtree(root / "items", ignore_errors=True)
            shutil.rmtree(root / ".digest-cache", ignore_errors=True)
            (root / "items").mkdir()
            base.append(timed(parse, root))
            first.append(timed(digest, root))
            again.append(timed(digest, root))
        written = len(list((root / "items").glob("*.md")))
        b = statistics.median(base)
        print(f"{args.entries}-entry feed, median of {args.runs} interleaved runs ({written} files written)")
        print(f"  baseline, feedparser parse alone (process): {b * 1000:6.0f} ms")
        for name, runs in (("digest import, empty items/", first), ("digest import again, all known", again)):
            m = statistics.median(runs)
            print(f"  {name:<42} {m * 1000:6.0f} ms  {m / b:.2f}x the baseline")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

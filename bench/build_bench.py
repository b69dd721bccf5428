"""Benchmark `digest build`: against Node's mjml CLI, on archives of 1k-100k items, and HTML bytes per item.

Every figure is a ratio against a baseline measured in the same run, interleaved, median of N runs: these
machines are noisy, so absolute seconds mean little. Run: ./dev bench build [--runs N] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / ".work"
NODE = WORK / "node"
DIGEST = [sys.executable, "-m", "digest", "-q"]
# The measured processes run as an installed digest does: with its bytecode compiled (pip compiles it at
# install). A shell with PYTHONDONTWRITEBYTECODE set would make every run compile digest's ~40 modules
# from source (about 50 ms a build), a cost no installed copy pays.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def sh(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **{"env": ENV, **kw})  # type: ignore[call-overload]


def ensure_node_mjml() -> Path:
    """Node's mjml CLI (npm package mjml), installed under bench/.work/node on first use."""
    binary = NODE / "node_modules" / ".bin" / "mjml"
    if not binary.exists():
        if not shutil.which("npm"):
            sys.exit("bench: npm is needed for the Node mjml baseline (apt-get install nodejs npm)")
        NODE.mkdir(parents=True, exist_ok=True)
        print("bench: npm install mjml@5 (once) ...", file=sys.stderr)
        sh(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE), "mjml@5"])
    return binary


def workspace(name: str) -> Path:
    ws = WORK / name
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "templates", ws / "templates")
    return ws


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


# Run in the sample workspace as `python -c`: the build's own stages, timed inside one process.
STAGES = """
import sys, time, json
t0 = time.perf_counter()
import digest.cli
t1 = time.perf_counter()
from digest import build, css, outdir, render, scan, site
spent = {"scan": 0.0, "render": 0.0, "mjml": 0.0, "premailer": 0.0, "assemble": 0.0, "write": 0.0}
# "premailer" holds its import (made at its first call) and its passes; "render" the rest of rendering.
def timing(name, owner, attr):
    inner = getattr(owner, attr)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start
    setattr(owner, attr, timed)
timing("scan", scan.Scanner, "finish")
timing("render", build, "_render")
timing("mjml", render, "compile_mjml")
timing("premailer", render, "inline_css")
timing("assemble", build, "assemble")
timing("write", outdir, "write")
timing("write", site, "write_index")
sys.argv = ["digest", "-q", "build", "--month", "2021-03", "--out", sys.argv[1]]
t2 = time.perf_counter()
try:
    digest.cli.main()
except SystemExit:
    pass
t3 = time.perf_counter()
spent["render"] -= spent["mjml"] + spent["premailer"]
print(json.dumps({"cli imports": t1 - t0, "build (all)": t3 - t2, **spent}))
"""


# The floor of a warm archive build's listing: every entry listed and every file stat'ed, nothing else.
FLOOR = """
import os, sys, time
start = time.perf_counter()
stack = ["items"]
while stack:
    with os.scandir(stack.pop()) as entries:
        for e in entries:
            if e.is_dir():
                stack.append(e.path)
            else:
                e.stat()
print(time.perf_counter() - start)
"""


def listing_floor(ws: Path, runs: int) -> float:
    """Median seconds of one scandir + stat pass over the archive's items folder."""
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", FLOOR], cwd=ws, env=ENV, check=True, capture_output=True)
        times.append(float(done.stdout))
    return statistics.median(times)


def breakdown(sample: Path, out: Path, runs: int) -> dict[str, float]:
    """Where the sample build's time goes: medians of the process-level and in-process stages."""
    py = [sys.executable]
    cmds = {
        "interpreter start": [*py, "-c", "pass"],
        "start + every import of a build": [
            *py,
            "-c",
            "import digest.cli, digest.build, digest.render, digest.message, digest.site, digest.css;"
            "digest.css._premailer()",
        ],
        "whole build": [*DIGEST, "build", "--month", "2021-03", "--out", str(out)],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd, sample))
        done = subprocess.run(
            [*py, "-c", STAGES, str(out)], cwd=sample, env=ENV, check=True, capture_output=True, text=True
        )
        for name, seconds in json.loads(done.stdout.splitlines()[-1]).items():
            stages.setdefault(name, []).append(seconds)
    return {k: statistics.median(v) for k, v in {**times, **stages}.items()}


def interleaved(commands: dict[str, tuple[list[str], Path]], runs: int) -> dict[str, float]:
    """Median wall time of each command, run in turn so that drifts in machine load hit all alike."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    for cmd, cwd in commands.values():  # warm-up: disk cache, .pyc, the items index
        timed(cmd, cwd)
    for _ in range(runs):
        for name, (cmd, cwd) in commands.items():
            times[name].append(timed(cmd, cwd))
    return {k: statistics.median(v) for k, v in times.items()}


def make_archive(ws: Path, n: int) -> None:
    """n items spread over 2000-2025 plus the ten sample items in March 2021; half the file names carry
    a date, half do not (the index must find items whatever their file is called)."""
    items = ws / "items"
    shutil.copytree(REPO / "items", items)
    rng = random.Random(n)
    start = 946684800  # 2000-01-01
    span = 26 * 365 * 86400
    march = (1614556800, 1617235200)  # no generated item in March 2021: the window holds the sample
    for k in range(n - 10):
        while True:
            ts = start + rng.randrange(span)
            if not march[0] <= ts < march[1] + 86400:
                break
        day = time.strftime("%Y-%m-%d", time.gmtime(ts))
        name = f"{day}-item-{k}.md" if k % 2 else f"note-{rng.getrandbits(40):010x}.md"
        folder = items / day[:4] if k % 3 == 0 else items
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(
            f"---\ntitle: Generated item {k}\ndate: {day}\ncategory: {'News' if k % 4 else 'Events'}\n"
            f"url: https://example.org/n/{k}\nsummary: Item {k} of a large archive.\n---\n",
            encoding="utf-8",
        )


def bytes_per_item(runs_dir: Path) -> dict[str, float]:
    """HTML size of digests of 1 and 50 items (summaries like the sample's): the marginal bytes per item."""
    sizes = {}
    sample = sorted((REPO / "items").glob("*.md"))
    texts = [p.read_text(encoding="utf-8") for p in sample]
    for n in (1, 50):
        ws = workspace(f"size-{n}")
        (ws / "items").mkdir()
        for k in range(n):
            text = texts[k % len(texts)].replace("title: ", f"title: ({k}) ", 1)
            (ws / "items" / f"item-{k:02d}.md").write_text(text, encoding="utf-8")
        sh([*DIGEST, "build", "--month", "2021-03", "--out", str(runs_dir / f"size-{n}")], cwd=ws)
        sizes[n] = (runs_dir / f"size-{n}" / "2021-03" / "digest.html").stat().st_size
    return {"html_1": sizes[1], "html_50": sizes[50], "per_item": (sizes[50] - sizes[1]) / 49}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    WORK.mkdir(parents=True, exist_ok=True)
    mjml = ensure_node_mjml()
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)

    sample = workspace("sample")
    shutil.copytree(REPO / "items", sample / "items")
    sh([sys.executable, "-m", "compileall", "-q", str(REPO / "digest")])
    sh([*DIGEST, "build", "--month", "2021-03", "--out", str(out / "sample")], cwd=sample, env=ENV)
    mjml_file = out / "sample" / "2021-03" / "digest.mjml"
    results: dict[str, object] = {"python": sys.version.split()[0], "runs": args.runs}

    t = interleaved(
        {
            "digest build (sample)": (
                [*DIGEST, "build", "--month", "2021-03", "--out", str(out / "a")],
                sample,
            ),
            "node mjml (same MJML)": ([str(mjml), str(mjml_file), "-o", str(out / "node.html")], sample),
        },
        args.runs,
    )
    ratio = t["digest build (sample)"] / t["node mjml (same MJML)"]
    results["vs_node_mjml"] = {**t, "ratio": ratio}
    print(f"digest build (whole sample, as a process) / node mjml (compile only): {ratio:.2f}x")
    for k, v in t.items():
        print(f"    {k:34s} median {v * 1000:7.0f} ms")

    parts = breakdown(sample, out / "b", args.runs)
    results["breakdown_s"] = parts
    print("where the sample build's time goes (medians; the stages are timed inside one build):")
    for k, v in parts.items():
        print(f"    {k:34s} {v * 1000:7.1f} ms")

    archive_rows = {}
    for n in sizes:
        ws = workspace(f"archive-{n}")
        make_archive(ws, n)
        cmd = [*DIGEST, "build", "--month", "2021-03", "--out", str(out / f"archive-{n}")]
        cold = timed(cmd, ws)  # fills the items index in .digest-cache/
        t = interleaved(
            {
                "sample": ([*DIGEST, "build", "--month", "2021-03", "--out", str(out / "a")], sample),
                "archive": (cmd, ws),
            },
            args.runs,
        )
        floor = listing_floor(ws, args.runs)
        archive_rows[n] = {
            "floor_s": floor,
            "floor_ratio": (t["sample"] + floor) / t["sample"],
            "cold_s": cold,
            "warm_s": t["archive"],
            "sample_s": t["sample"],
            "warm_ratio": t["archive"] / t["sample"],
            "cold_ratio": cold / t["sample"],
        }
        print(
            f"archive of {n:>6} items, March 2021: warm {t['archive'] / t['sample']:.2f}x the sample build, "
            f"first run (fills the index) {cold / t['sample']:.1f}x; "
            f"a listing alone (scandir + stat) takes {floor * 1000:.0f} ms: "
            f"sample + listing = {(t['sample'] + floor) / t['sample']:.2f}x"
        )
    results["archives"] = archive_rows

    size = bytes_per_item(out)
    results["size"] = size
    print(
        f"HTML size: 1 item {size['html_1'] / 1024:.1f} KB, 50 items {size['html_50'] / 1024:.1f} KB "
        f"({size['per_item']:.0f} bytes per item; Gmail clips at 102 KB)"
    )
    (WORK / "results-build.json").write_text(json.dumps(results, indent=2))
    print(f"(details in {os.path.relpath(WORK / 'results-build.json')})")


if __name__ == "__main__":
    main()

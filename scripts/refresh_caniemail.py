#!/usr/bin/env python3
"""Refresh digest/check/caniemail.json, the dated copy of the caniemail support data `digest check` uses.

    scripts/refresh_caniemail.py                  # npm pack caniemail@latest: package/data/caniemail.json
    scripts/refresh_caniemail.py --version 2.0.2  # a given version of the npm package
    scripts/refresh_caniemail.py --from FILE      # a caniemail.json you already have (no network)

The file is checked (caniemail's shape: api_version, last_update_date, nicenames, data with slugs and
stats) before it replaces the copy; the copy is written whole or not at all. Review the diff of the
findings (`digest check`) after a refresh: the data changes what is reported. The data and the npm package
are MIT-licensed (digest/check/caniemail.LICENSE); a new package version keeps that licence only if its
LICENSE says so: look.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

DEST = Path(__file__).resolve().parents[1] / "digest" / "check" / "caniemail.json"
MEMBER = "package/data/caniemail.json"


class Refused(Exception):
    """The data could not be fetched or is not caniemail's."""


def fetch(version: str, workdir: Path) -> Path:
    """`npm pack caniemail@version` into workdir; the path of its data file."""
    try:
        done = subprocess.run(
            ["npm", "pack", f"caniemail@{version}", "--silent"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as err:
        raise Refused("npm is not installed: install Node.js, or pass --from FILE") from err
    if done.returncode != 0:
        raise Refused(f"npm pack caniemail@{version} failed: {done.stderr.strip() or done.stdout.strip()}")
    (tgz,) = workdir.glob("caniemail-*.tgz")
    with tarfile.open(tgz) as tar:
        try:
            tar.extract(MEMBER, workdir, filter="data")
        except KeyError as err:
            raise Refused(f"{tgz.name}: no {MEMBER} in the package") from err
    return workdir / MEMBER


def validate(path: Path) -> dict[str, Any]:
    """The data, when it has caniemail's shape; Refused otherwise."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        for key in ("api_version", "last_update_date", "nicenames", "data"):
            if key not in raw:
                raise ValueError(f"no {key!r}")
        if not {"family", "platform"} <= set(raw["nicenames"]):
            raise ValueError("nicenames without family and platform")
        if not raw["data"]:
            raise ValueError("no features")
        for i, feature in enumerate(raw["data"]):
            if not isinstance(feature.get("slug"), str) or not isinstance(feature.get("stats"), dict):
                raise ValueError(f"feature {i} has no slug or stats")
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise Refused(f"{path}: not the caniemail data ({err})") from err
    return dict(raw)


def install(source: Path, dest: Path) -> dict[str, Any]:
    """Check the source and put it in place of dest, atomically."""
    raw = validate(source)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, dest)
    return raw


def note_version(dest: Path, version: str) -> None:
    """Name the npm version in the licence file beside the data (its first line says where it came from)."""
    licence = dest.with_name("caniemail.LICENSE")
    if licence.is_file():
        text = licence.read_text(encoding="utf-8")
        licence.write_text(
            re.sub(r"caniemail@[\w.-]+", f"caniemail@{version}", text, count=1), encoding="utf-8"
        )


def main(argv: list[str] | None = None) -> int:
    """Fetch or take the data, check it, install it; 1 with a message on stderr when refused."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="source", type=Path, help="a caniemail.json to use (no network)")
    group.add_argument("--version", default="latest", help="the npm package version (default: latest)")
    parser.add_argument("--dest", type=Path, default=DEST, help=f"where to write (default: {DEST})")
    args = parser.parse_args(argv)
    try:
        if args.source is not None:
            raw = install(args.source, args.dest)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                raw = install(fetch(args.version, Path(tmp)), args.dest)
            resolved = args.version
            if resolved == "latest":
                resolved = (
                    subprocess.run(
                        ["npm", "view", "caniemail@latest", "version"],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout.strip()
                    or resolved
                )
            note_version(args.dest, resolved)
    except Refused as err:
        print(f"refresh_caniemail: {err}", file=sys.stderr)
        return 1
    print(f"caniemail data of {raw['last_update_date']}: {len(raw['data'])} features -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmarks: `./dev bench` runs them all, `./dev bench build [options]` one of them."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    available = sorted(p.stem.removesuffix("_bench") for p in HERE.glob("*_bench.py"))
    names = [sys.argv[1]] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else available
    if any(n not in available for n in names):
        sys.exit(f"bench: unknown benchmark {names[0]!r}; available: {', '.join(available)}")
    for name in names:
        print(f"== {name}")
        sys.argv = [
            str(HERE / f"{name}_bench.py"),
            *sys.argv[2 if len(sys.argv) > 1 and sys.argv[1] == name else 1 :],
        ]
        runpy.run_path(str(HERE / f"{name}_bench.py"), run_name="__main__")


if __name__ == "__main__":
    main()

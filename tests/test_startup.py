"""What a command imports before it works: the build's listing of a large archive starts before the
renderer's modules are imported (they then load while the listing runs), and no command imports what only
the network needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
import {module}
print(sorted(m for m in {names!r} if m in sys.modules))
"""

RENDERING = ("jinja2", "mjml", "premailer", "cssutils", "digest.render", "digest.message")


def imported(module: str, names: tuple[str, ...]) -> list[str]:
    code = PROBE.format(module=module, names=names)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout)  # type: ignore[no-any-return]  # noqa: S307 - a list of names we printed


def test_the_build_module_leaves_rendering_to_after_the_listing_starts() -> None:
    assert imported("digest.build", (*RENDERING, "digest.site", "digest.scan")) == ["digest.scan"]


@pytest.mark.parametrize("module", ["digest.cli", "digest.build", "digest.render"])
def test_no_network_modules_at_start(module: str) -> None:
    assert imported(module, ("requests", "ssl", "http.client", "urllib.request")) == []

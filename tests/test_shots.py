"""Screenshots in the real headless Chromium: the sample, and broken templates that must be caught.

Skipped only when no Chromium is installed and DIGEST_REQUIRE_BROWSER is unset (README: Tests); CI sets it,
and then a missing browser fails these tests instead.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result
from conftest import NOW, REPO, write_item

from digest.build import build
from digest.config import Config, load_config
from digest.errors import BrowserError, ScreenshotError
from digest.outdir import SHOT_FILES
from digest.shots import _in_folder, find_chromium, open_browser, take_screenshots
from digest.window import Window, resolve

if TYPE_CHECKING:
    from playwright.sync_api import Browser

Run = Callable[..., Result]
FIXTURES = REPO / "tests" / "fixtures" / "templates"


def require_browser() -> None:
    """Skip (or, with DIGEST_REQUIRE_BROWSER set, fail) when Chromium or Playwright is missing."""
    why = None
    if find_chromium() is None:
        why = "no Chromium installed (Debian: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "Playwright is not installed (pip install -e '.[test]')"
    if why is None:
        return
    if os.environ.get("DIGEST_REQUIRE_BROWSER"):
        pytest.fail(f"DIGEST_REQUIRE_BROWSER is set but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module."""
    require_browser()
    with open_browser() as b:
        yield b


def sample_build(ws: Path, *, fixture: str | None = None) -> tuple[Config, Window, Path]:
    """Copy the sample workspace (with a fixture's templates over it) and build March 2021."""
    shutil.copy(REPO / "digest.toml", ws / "digest.toml")
    shutil.copytree(REPO / "items", ws / "items")
    shutil.copytree(REPO / "templates", ws / "templates")
    if fixture:
        for path in (FIXTURES / fixture).iterdir():
            shutil.copy(path, ws / "templates" / path.name)
    config = load_config(ws / "digest.toml", environ={})
    now = datetime.fromisoformat(NOW)
    window = resolve(tz=config.tz, locale=config.language, now=now, month_="2021-03")
    result = build(config, window, now=now)
    return config, window, result.folder


# ---- a minimal PNG reader, to look at pixels without an imaging library ----


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixel(data: bytes, x: int, y: int) -> tuple[int, int, int]:
    """The RGB of one pixel of an 8-bit RGB or RGBA PNG (rows 0..y are unfiltered)."""
    width, _height = png_size(data)
    depth, color = data[24], data[25]
    assert depth == 8 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    idat = b""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    row = bytearray(stride)
    for r in range(y + 1):
        start = r * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        row = bytearray(stride)
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (line[i] + pred) & 0xFF
        prev = row
    return row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]


def brightness(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# ---- the tests ----


@pytest.mark.browser
def test_the_sample(browser: Browser, tmp_path: Path) -> None:
    config, window, folder = sample_build(tmp_path)
    shots = take_screenshots(
        folder, base_url=config.base_url, slug=window.slug, browser=browser, strict=False
    )
    assert [p.name for p in shots.files] == list(SHOT_FILES)
    assert shots.problems == () and shots.remote_images == ()  # problems are returned, not raised: none
    for name in SHOT_FILES:
        data = (folder / name).read_bytes()
        width, height = png_size(data)
        assert width == int(name.split("-")[1])  # the viewport width: nothing wider
        assert height > 1500  # the full page, not one screen
    # Light is light and dark is dark: the card behind the title (x=40 px, y=60 px) at 640 px.
    light = png_pixel((folder / "shot-640-light.png").read_bytes(), 40, 60)
    dark = png_pixel((folder / "shot-640-dark.png").read_bytes(), 40, 60)
    assert brightness(light) > 200, light
    assert brightness(dark) < 60, dark


@pytest.mark.browser
def test_a_900px_table_scrolls_sideways_and_fails(browser: Browser, tmp_path: Path) -> None:
    config, window, folder = sample_build(tmp_path, fixture="wide-table")
    with pytest.raises(ScreenshotError) as caught:
        take_screenshots(folder, base_url=config.base_url, slug=window.slug, browser=browser)
    problems = caught.value.problems
    assert any(p.startswith("shot-375-light.png: the page scrolls sideways at 375 px") for p in problems)
    assert any("shot-640-dark.png" in p for p in problems)  # 900 px is wider than 640 too
    assert any('the cause: <table> 900 px wide ("Our partners this month")' in p for p in problems), problems
    for name in SHOT_FILES:  # written anyway, to look at
        assert png_size((folder / name).read_bytes())[0] >= 900


@pytest.mark.browser
def test_an_image_missing_from_the_build_folder_fails(browser: Browser, tmp_path: Path) -> None:
    config, window, folder = sample_build(tmp_path, fixture="missing-image")
    with pytest.raises(ScreenshotError) as caught:
        take_screenshots(folder, base_url=config.base_url, slug=window.slug, browser=browser)
    logo = f"{config.base_url}2021-03/logo.png"
    assert (
        f"shot-375-light.png: the image {logo} does not load (not in the build folder)"
        in caught.value.problems
    )
    # Put the logo where the email says it is: now it loads (and a rebuild keeps the file).
    shutil.copy(folder / "shot-375-light.png", folder / "logo.png")
    build(config, window, now=datetime.fromisoformat(NOW))
    assert (folder / "logo.png").is_file()
    shots = take_screenshots(folder, base_url=config.base_url, slug=window.slug, browser=browser)
    assert len(shots.files) == 4


@pytest.mark.browser
def test_a_file_that_is_not_an_image_fails(browser: Browser, tmp_path: Path) -> None:
    config, window, folder = sample_build(tmp_path, fixture="missing-image")
    (folder / "logo.png").write_text("not a picture")
    with pytest.raises(ScreenshotError) as caught:
        take_screenshots(folder, base_url=config.base_url, slug=window.slug, browser=browser)
    assert any(
        "logo.png does not load (the file in the build folder is not an image the browser can show)" in p
        for p in caught.value.problems
    )


@pytest.mark.browser
def test_a_remote_image_gets_a_placeholder_and_is_not_a_failure(browser: Browser, tmp_path: Path) -> None:
    ws = tmp_path
    config, window, folder = sample_build(ws)
    write_item(
        ws / "items",
        "2021-03-30-photo.md",
        """
        ---
        title: A photo from the assembly
        date: 2021-03-30
        category: News
        summary: Members met in Geneva.
        image: https://images.example.net/assembly.jpg
        image_alt: Members voting with raised hands
        ---
        """,
    )
    build(config, window, now=datetime.fromisoformat(NOW))
    shots = take_screenshots(folder, base_url=config.base_url, slug=window.slug, browser=browser)
    assert shots.remote_images == ("https://images.example.net/assembly.jpg",)


@pytest.mark.browser
def test_build_with_screenshots_and_the_archive(workspace: Path, run: Run) -> None:
    """`digest build --screenshots` writes the four PNGs; a later plain build drops them (they would be stale)."""
    require_browser()
    result = run("build", "--month", "2021-03", "--screenshots")
    assert result.exit_code == 0, result.output
    folder = workspace / "out" / "2021-03"
    assert {p.name for p in folder.glob("shot-*.png")} == set(SHOT_FILES)
    assert "screenshots -> out/2021-03/shot-375-light.png" in result.stderr
    index = (workspace / "out" / "index.html").read_text()
    assert '<img src="2021-03/shot-375-light.png"' in index
    assert all(f'href="2021-03/{name}"' in index for name in SHOT_FILES)
    assert run("build", "--month", "2021-03").exit_code == 0
    assert not list(folder.glob("shot-*.png"))
    assert "shot-375-light.png" not in (workspace / "out" / "index.html").read_text()


def test_every_language_s_digest_is_screenshot(workspace: Path, run: Run) -> None:
    """A further language's digest (out/<slug>/fr/) gets its four screenshots too, in its own folder."""
    require_browser()
    write_item(
        workspace / "items",
        "fr.md",
        "---\ntitle: Les coopératives\ndate: 2021-03-12\ncategory: News\nlang: fr\nsummary: Une journée.\n---\n",
    )
    result = run("build", "--month", "2021-03", "--screenshots")
    assert result.exit_code == 0, result.output
    fr = workspace / "out" / "2021-03" / "fr"
    assert {p.name for p in fr.glob("shot-*.png")} == set(SHOT_FILES)
    assert "screenshots -> out/2021-03/fr/shot-375-light.png" in result.stderr
    assert run("build", "--month", "2021-03").exit_code == 0
    assert not list(fr.glob("shot-*.png"))  # a rebuild drops them there too


@pytest.mark.browser
def test_shots_command_fails_on_the_wide_table(workspace: Path, run: Run) -> None:
    require_browser()
    shutil.copy(FIXTURES / "wide-table" / "digest.mjml.j2", workspace / "templates" / "digest.mjml.j2")
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("shots", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: the screenshots show problems:\n  shot-375-light.png: the page scrolls"
    )
    assert "Traceback" not in result.output


# ---- inline pages: what the screenshots must find, without a build ----

BASE = "https://example.org/digest/"
PREFIX = BASE + "2021-03/"


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
        + chunk(b"IEND", b"")
    )


def page(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "digest.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>body{{margin:0;font:16px sans-serif}}</style></head><body>{body}</body></html>"
    )
    return folder


BROKEN = f"""
<link rel="stylesheet" href="{PREFIX}missing.css">
<script src="https://cdn.example.net/tracker.js"></script>
<div class="box" style="width:700px"><p>Intro</p>
  <table class="wide" width="900"><tr><td>Our partners</td></tr></table>
</div>
<img src="{PREFIX}ok.png" alt="" width="10" height="10">
<img src="{PREFIX}missing.png" alt="" width="10" height="10">
<img src="{PREFIX}notes.png" alt="" width="10" height="10">
<img src="https://cdn.example.net/photo.jpg" alt="" width="10" height="10">
<img src="data:image/png;base64,AAAA" alt="" width="10" height="10">
"""


def broken_problems() -> list[str]:
    """Every problem BROKEN has, in the order the run lists them."""
    found = []
    for name in SHOT_FILES:
        width = int(name.split("-")[1])
        found += [
            f"{name}: the page scrolls sideways at {width} px: it is 900 px wide; the cause: "
            '<table class="wide"> 900 px wide ("Our partners") '
            "(give it width:100% and a max-width instead of a fixed width)",
            f"{name}: the image {PREFIX}missing.png does not load (not in the build folder)",
            f"{name}: the image {PREFIX}notes.png does not load "
            "(the file in the build folder is not an image the browser can show)",
            f"{name}: the image data:image/png;base64,AAAA does not load (it did not load)",
        ]
    return found


@pytest.mark.browser
def test_problems_are_found_named_and_returned_or_raised(browser: Browser, tmp_path: Path) -> None:
    """A page that scrolls sideways names the element reaching furthest (the 900 px table, not the 700 px
    box around it); each image that does not load is named with why; strict=False returns them all."""
    folder = page(tmp_path / "2021-03", BROKEN)
    (folder / "ok.png").write_bytes(tiny_png())
    (folder / "notes.png").write_text("not a picture")
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser, strict=False)
    assert list(shots.problems) == broken_problems()
    assert shots.remote_images == ("https://cdn.example.net/photo.jpg",)
    assert [p.name for p in shots.files] == list(SHOT_FILES)
    for name in SHOT_FILES:
        (folder / name).unlink()
    with pytest.raises(ScreenshotError) as caught:
        take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser)
    assert caught.value.problems == broken_problems()
    assert all((folder / name).is_file() for name in SHOT_FILES)  # written anyway, to look at


@pytest.mark.browser
def test_without_a_fixed_width_the_element_reaching_furthest_is_named(
    browser: Browser, tmp_path: Path
) -> None:
    folder = page(
        tmp_path / "2021-03",
        '<div><span class="near" style="display:inline-block;padding-left:800px"></span></div>'
        '<div><span class="far" style="display:inline-block;padding-left:1000px"></span></div>',
    )
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser, strict=False)
    assert len(shots.problems) == 4
    for problem in shots.problems:
        assert 'the cause: <span class="far"> 1000 px wide (give it' in problem, problem


@pytest.mark.browser
def test_a_page_that_fits_has_no_problems(browser: Browser, tmp_path: Path) -> None:
    """Exactly the viewport's width is not sideways scrolling."""
    folder = page(
        tmp_path / "2021-03", f'<div style="width:375px">fits</div><img src="{PREFIX}ok.png" alt="">'
    )
    (folder / "ok.png").write_bytes(tiny_png())
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser)
    assert shots.problems == () and shots.remote_images == ()


@pytest.mark.browser
def test_the_page_reaches_no_network(browser: Browser, tmp_path: Path) -> None:
    """A script, a style sheet and an image outside the build folder (a real server on loopback): the image
    gets the grey placeholder, the others are blocked; the server sees no request at all."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    other = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        folder = page(
            tmp_path / "2021-03",
            f'<script src="{other}x.js"></script><link rel="stylesheet" href="{other}x.css">'
            f'<img src="{other}photo.png" alt="" style="display:block;width:100%">',
        )
        # The email on the same host as the others (what is not under it is "elsewhere"): no mixed-content
        # or private-network rule of the browser's own blocks them, only the screenshot run can.
        shots = take_screenshots(folder, base_url=other + "digest/", slug="2021-03", browser=browser)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert shots.remote_images == (f"{other}photo.png",) and shots.problems == ()
    r, g, b = png_pixel((folder / "shot-375-light.png").read_bytes(), 20, 20)
    assert (abs(r - 0x9A), abs(g - 0xA5), abs(b - 0xB1)) < (8, 8, 8)  # the placeholder's grey, #9aa5b1


@pytest.mark.browser
def test_without_a_browser_given_it_starts_its_own(browser: Browser, tmp_path: Path) -> None:
    """Even while this thread drives another browser (Playwright's loop is running here)."""
    folder = page(tmp_path / "2021-03", f'<img src="{PREFIX}missing.png" alt="">')
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", strict=False)
    assert [p.split(":", 1)[0] for p in shots.problems] == list(SHOT_FILES)
    assert all("missing.png does not load (not in the build folder)" in p for p in shots.problems)


@pytest.mark.browser
def test_a_few_pixels_too_wide_is_caught_and_named(browser: Browser, tmp_path: Path) -> None:
    """400 px is too wide at 375 and fits at 640: two problems, naming the box."""
    folder = page(tmp_path / "2021-03", '<div class="slightly" style="width:400px">a box</div>')
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser, strict=False)
    assert [p.split(":", 1)[0] for p in shots.problems] == ["shot-375-light.png", "shot-375-dark.png"]
    assert all('the cause: <div class="slightly"> 400 px wide ("a box")' in p for p in shots.problems)


# ---- without a browser (these run everywhere) ----


def test_in_folder(tmp_path: Path) -> None:
    root = tmp_path / "2021-03"
    (root / "img").mkdir(parents=True)
    (root / "index.html").write_text("web")
    (root / "img" / "logo.png").write_bytes(b"png")
    (root / "img" / "index.html").write_text("sub")
    (tmp_path / "secret.txt").write_text("no")
    assert _in_folder(root, PREFIX + "img/logo.png?v=2", PREFIX) == root / "img" / "logo.png"
    assert _in_folder(root, PREFIX + "img%2Flogo.png", PREFIX) == root / "img" / "logo.png"
    assert _in_folder(root, PREFIX, PREFIX) == root / "index.html"
    assert _in_folder(root, PREFIX + "img/", PREFIX) == root / "img" / "index.html"
    assert _in_folder(root, PREFIX + "img", PREFIX) is None  # a folder is not a file
    assert _in_folder(root, PREFIX + "nothing.png", PREFIX) is None
    assert _in_folder(root, PREFIX + "..%2Fsecret.txt", PREFIX) is None  # never outside the folder


def test_find_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setenv("DIGEST_CHROMIUM", str(browser))
    assert find_chromium() == str(browser)
    monkeypatch.setenv("DIGEST_CHROMIUM", str(tmp_path))  # a folder is no browser
    assert find_chromium() is None
    monkeypatch.delenv("DIGEST_CHROMIUM")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_chromium() is None
    (bin_dir / "chromium-browser").write_text("#!/bin/sh\n")
    (bin_dir / "chromium-browser").chmod(0o755)
    assert find_chromium() == str(bin_dir / "chromium-browser")
    (bin_dir / "chromium").write_text("#!/bin/sh\n")
    (bin_dir / "chromium").chmod(0o755)
    assert find_chromium() == str(bin_dir / "chromium")  # Debian's name first


def test_shots_before_building(workspace: Path, run: Run) -> None:
    result = run("shots", "--month", "2021-03")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: out/2021-03/ has not been built: run `digest build --month 2021-03` first\n"
    )


def test_no_chromium(workspace: Path, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_CHROMIUM", str(workspace / "no-such-browser"))
    assert run("build", "--month", "2021-03").exit_code == 0
    result = run("shots", "--month", "2021-03")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no Chromium found: install Debian's chromium package")
    with pytest.raises(BrowserError), open_browser():
        pass


# ---- on a phone, the text starts near the edge ----


@pytest.mark.browser
def test_the_double_mobile_padding_is_caught(browser: Browser, tmp_path: Path) -> None:
    """The old rule matched the section's cell and the text's cell: text 32 px in on a 375 px screen."""
    config, window, folder = sample_build(tmp_path, fixture="mobile-padding")
    shots = take_screenshots(
        folder, base_url=config.base_url, slug=window.slug, browser=browser, strict=False
    )
    assert [p.split(":")[0] for p in shots.problems] == ["shot-375-light.png", "shot-375-dark.png"]
    for problem in shots.problems:
        assert ": the text starts 32 px from the edge at 375 px (at most 24 on a phone): " in problem
        assert "max-width: 480px media query" in problem


@pytest.mark.browser
def test_the_sample_text_starts_16_px_in_on_a_phone(browser: Browser, tmp_path: Path) -> None:
    _config, _window, folder = sample_build(tmp_path)
    page_ = browser.new_page(viewport={"width": 375, "height": 800})
    try:
        page_.goto((folder / "digest.html").as_uri())
        from digest.shots import _MEASURE

        measured = page_.evaluate(_MEASURE)
    finally:
        page_.close()
    assert 16 <= measured["inset"] <= 24, measured


@pytest.mark.browser
@pytest.mark.parametrize(("padding", "flagged"), [(25, True), (24, False), (0, False)])
def test_text_inset_on_a_phone(browser: Browser, tmp_path: Path, padding: int, flagged: bool) -> None:
    """25 px is too far in at 375 px, 24 px is not; 640 px is not checked (it has its own margins)."""
    folder = page(
        tmp_path / "2021-03",
        f'<div style="padding-left:{padding}px"><p>Some text that starts where it starts</p></div>'
        '<p style="display:none">hidden, at 0</p><div style="font-size:0;max-height:0;overflow:hidden">no size</div>',
    )
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser, strict=False)
    if not flagged:
        assert shots.problems == ()
        return
    assert list(shots.problems) == [
        f"{name}: the text starts {padding} px from the edge at 375 px (at most 24 on a phone): "
        "'Some text that starts where it starts' (check the side padding of the max-width: 480px media "
        "query: on both a section and its text, the two add up)"
        for name in ("shot-375-light.png", "shot-375-dark.png")
    ]


@pytest.mark.browser
def test_text_inset_of_a_right_to_left_page(browser: Browser, tmp_path: Path) -> None:
    folder = page(tmp_path / "2021-03", '<div dir="rtl" style="padding-right:30px"><p>نص عربي</p></div>')
    folder_html = (folder / "digest.html").read_text().replace("<body", '<body dir="rtl"', 1)
    (folder / "digest.html").write_text(folder_html)
    shots = take_screenshots(folder, base_url=BASE, slug="2021-03", browser=browser, strict=False)
    assert len(shots.problems) == 2 and all("starts 30 px from the edge" in p for p in shots.problems)

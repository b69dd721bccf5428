"""digest diff: two built folders -> side-by-side and difference images, the changed share, the verdict.

The comparison is tested on PNGs drawn here; the command end to end in real Chromium (marked `browser`:
skipped without Chromium unless DIGEST_REQUIRE_BROWSER is set, see test_shots.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result
from PIL import Image
from test_shots import require_browser

from digest.diff import PAD, DiffReport, ShotDiff, _compare, diff, page
from digest.errors import NotBuilt
from digest.shots import open_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser

Run = Callable[..., Result]
NAMES = ["375-light", "375-dark", "640-light", "640-dark"]


def png(path: Path, size: tuple[int, int], *, box: tuple[int, int, int, int] | None = None) -> Path:
    """A white picture, with a black box drawn in it if given."""
    image = Image.new("RGB", size, (255, 255, 255))
    if box is not None:
        image.paste((0, 0, 0), box)
    image.save(path)
    return path


def red_pixels(path: Path) -> int:
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
        return sum(count for count, colour in colours if colour == (255, 0, 0))


def test_identical_pictures_have_nothing_changed(tmp_path: Path) -> None:
    a, b = (
        png(tmp_path / "a.png", (40, 30), box=(5, 5, 10, 10)),
        png(tmp_path / "b.png", (40, 30), box=(5, 5, 10, 10)),
    )
    shot = _compare(a, b, tmp_path, "shot-375-light.png")
    assert (shot.name, shot.changed, shot.total, shot.share) == ("375-light", 0, 1200, 0.0)
    assert shot.side_by_side == tmp_path / "side-375-light.png"
    assert shot.difference == tmp_path / "diff-375-light.png"
    with Image.open(shot.side_by_side) as side:
        assert side.size == (96, 30)  # two of 40 px and the 16 px gap
    assert red_pixels(shot.difference) == 0


def test_a_changed_box_is_counted_and_drawn_in_red(tmp_path: Path) -> None:
    a = png(tmp_path / "a.png", (40, 30))
    b = png(tmp_path / "b.png", (40, 30), box=(10, 10, 20, 15))  # 10 x 5 pixels
    shot = _compare(a, b, tmp_path, "shot-640-dark.png")
    assert shot.changed == 50 and shot.share == pytest.approx(100 * 50 / 1200)
    assert red_pixels(shot.difference) == 50
    with Image.open(shot.side_by_side) as side:  # the new one right of the old one and a 16 px gap
        assert side.getpixel((40 + 16 + 10, 10)) == (0, 0, 0, 255)
        assert side.getpixel((40 + 8, 12)) == (255, 255, 255, 255)
    with Image.open(shot.difference) as image:
        assert image.getpixel((0, 0))[:3] != (255, 0, 0)  # the rest is the faded old picture


def test_a_taller_page_counts_its_new_part_as_changed(tmp_path: Path) -> None:
    a = png(tmp_path / "a.png", (20, 10))
    b = png(tmp_path / "b.png", (20, 15))
    shot = _compare(a, b, tmp_path, "shot-375-dark.png")
    assert (shot.changed, shot.total) == (100, 300)  # 20 x 5 more rows, against the magenta padding
    with Image.open(shot.side_by_side) as side:
        assert side.getpixel((0, 12)) == PAD  # the old one, padded
        assert side.getpixel((20 + 16, 12)) == (255, 255, 255, 255)


def test_the_verdict_and_the_page(tmp_path: Path) -> None:
    shots = tuple(
        ShotDiff(name, changed, 1000, tmp_path / f"side-{name}.png", tmp_path / f"diff-{name}.png")
        for name, changed in zip(NAMES, [0, 1, 0, 0], strict=True)
    )
    report = DiffReport(out=tmp_path, shots=shots)
    assert report.failed(0.0) and report.failed(0.09) and not report.failed(0.1)
    text = page(report, old=Path("main/2021-03"), new=Path("pr/<2021-03>"))
    assert "<h1>main/2021-03 → pr/&lt;2021-03&gt;</h1>" in text
    assert "<h2>375-dark: 0.100% of the pixels changed</h2>" in text
    assert '<a href="diff-640-light.png">difference</a>' in text


def test_a_folder_that_is_not_a_build_is_named(tmp_path: Path, run: Run) -> None:
    (tmp_path / "old").mkdir()
    with pytest.raises(NotBuilt):
        diff(tmp_path / "old", tmp_path / "new")
    result = run("diff", str(tmp_path / "old"), str(tmp_path / "new"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "old" in result.stderr


# ---- end to end, in Chromium ----


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    with open_browser() as b:
        yield b


@pytest.fixture
def two_builds(workspace: Path, run: Run) -> tuple[Path, Path]:
    """The sample built twice: out-old/2021-03 and out-new/2021-03 (the same so far)."""
    assert run("build", "--month", "2021-03", "--out", "out-old").exit_code == 0
    assert run("build", "--month", "2021-03", "--out", "out-new").exit_code == 0
    return workspace / "out-old" / "2021-03", workspace / "out-new" / "2021-03"


@pytest.mark.browser
def test_identical_builds_pass(two_builds: tuple[Path, Path], run: Run, tmp_path: Path) -> None:
    require_browser()
    old, new = two_builds
    result = run("diff", str(old), str(new), "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{n}: 0.000% of the pixels changed" for n in NAMES]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        ["index.html", *(f"side-{n}.png" for n in NAMES), *(f"diff-{n}.png" for n in NAMES)]
    )
    assert not list(old.glob("shot-*.png")) and not list(new.glob("shot-*.png"))  # the builds are untouched


@pytest.mark.browser
def test_changed_text_fails_and_shows_where(
    workspace: Path, two_builds: tuple[Path, Path], run: Run, browser: Browser
) -> None:
    old, new = two_builds
    toml = workspace / "digest.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'title = "Co-operative News Digest"', 'title = "Another Title Entirely, And Longer"'
        )
    )
    shutil.rmtree(new)
    assert run("build", "--month", "2021-03", "--out", "out-new").exit_code == 0
    report = diff(old, new, browser=browser)
    assert report.out == new / "diff"
    assert [s.name for s in report.shots] == NAMES
    assert all(s.changed > 0 for s in report.shots)
    assert report.failed(0.1)
    assert red_pixels(new / "diff" / "diff-375-light.png") > 100
    result = run("diff", str(old), str(new))
    assert result.exit_code == 1
    assert "(over the threshold)" in result.stdout
    assert "diff: changed beyond 0.1%; images and index.html in " in result.stderr
    assert run("diff", str(old), str(new), "--threshold", "100").exit_code == 0

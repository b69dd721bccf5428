"""digest diff: two built folders (main's and a pull request's, say) -> what changed on screen.

Each folder is screenshotted as `digest shots` does (375 and 640 px, light and dark) in a copy of it, so
neither is touched; each pair of screenshots is compared with pixelmatch (which ignores anti-aliasing), and
the output folder gets, per width and palette, the two side by side and the difference (changed pixels in
red over a faded copy of the old one), with an index.html that shows them all. A page that grew is padded
(in magenta) to the taller one: the new part counts as changed.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest import outdir
from digest.errors import DigestError, OutputError
from digest.fsutil import atomic_write
from digest.outdir import SCHEMES, WIDTHS, shot_name
from digest.shots import take_screenshots

if TYPE_CHECKING:
    from PIL.Image import Image
    from playwright.sync_api import Browser

PAD = (255, 0, 255, 255)  # where one page is shorter: a colour no email uses, so it shows as changed
GAP = 16  # px between the two pictures side by side
PIXEL_THRESHOLD = 0.1  # pixelmatch's per-pixel colour distance (0..1): its default


@dataclass(frozen=True)
class ShotDiff:
    """One width and palette: how many pixels changed of how many, and the images written."""

    name: str  # 375-light
    changed: int
    total: int
    side_by_side: Path
    difference: Path

    @property
    def share(self) -> float:
        """The changed share of pixels, in percent."""
        return 100.0 * self.changed / self.total if self.total else 0.0


@dataclass(frozen=True)
class DiffReport:
    """Every shot's difference, and the folder with the images and the page."""

    out: Path
    shots: tuple[ShotDiff, ...]

    def failed(self, threshold: float) -> bool:
        """True when a shot's changed share (percent) is over the threshold."""
        return any(s.share > threshold for s in self.shots)


def diff(old: Path, new: Path, *, out: Path | None = None, browser: Browser | None = None) -> DiffReport:
    """Screenshot two built folders and compare them; the images and index.html go to out (new/diff/)."""
    out = out if out is not None else new / "diff"
    builds = [outdir.load(old), outdir.load(new)]  # NotBuilt / OutputError name the folder
    try:
        from PIL import Image as PILImage  # noqa: F401 - only to say what is missing, early
        from pixelmatch.contrib.PIL import pixelmatch  # noqa: F401
    except ImportError as err:
        raise DigestError("digest diff needs pixelmatch and Pillow: pip install pixelmatch") from err
    with tempfile.TemporaryDirectory(prefix="digest-diff-") as tmp:
        shots = [_shoot(b, Path(tmp) / side, browser) for b, side in zip(builds, ("old", "new"), strict=True)]
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{out}: cannot make the output folder: {err.strerror}") from err
        results = [
            _compare(shots[0] / shot_name(w, s), shots[1] / shot_name(w, s), out, shot_name(w, s))
            for w in WIDTHS
            for s in SCHEMES
        ]
    report = DiffReport(out=out, shots=tuple(results))
    atomic_write(out / "index.html", page(report, old=old, new=new).encode())
    return report


def _shoot(built: outdir.Built, into: Path, browser: Browser | None) -> Path:
    """Screenshots of a copy of the built folder (layout problems are `digest shots`' business)."""
    slug = built.manifest.slug
    copy = into / slug
    shutil.copytree(built.folder, copy, ignore=shutil.ignore_patterns("shot-*.png", "diff"))
    base_url = built.manifest.web_url.removesuffix(f"{slug}/")  # the page's links point under it
    take_screenshots(copy, base_url=base_url, slug=slug, browser=browser, strict=False)
    return copy


def _compare(old_png: Path, new_png: Path, out: Path, name: str) -> ShotDiff:
    from PIL import Image as PILImage

    with PILImage.open(old_png) as a, PILImage.open(new_png) as b:
        width, height = max(a.width, b.width), max(a.height, b.height)
        one, two = _padded(a, width, height), _padded(b, width, height)
    changed, difference = _pixel_diff(one, two)
    total = width * height
    side = PILImage.new("RGBA", (2 * width + GAP, height), (255, 255, 255, 255))
    side.paste(one, (0, 0))
    side.paste(two, (width + GAP, 0))
    key = name.removeprefix("shot-").removesuffix(".png")
    files = (out / f"side-{key}.png", out / f"diff-{key}.png")
    for image, path in zip((side, difference), files, strict=True):
        try:
            image.save(path, format="PNG")
        except OSError as err:
            raise OutputError(f"{path}: cannot write the image: {err.strerror}") from err
    return ShotDiff(key, changed, total, *files)


def _padded(image: Image, width: int, height: int) -> Image:
    from PIL import Image as PILImage

    canvas = PILImage.new("RGBA", (width, height), PAD)
    canvas.paste(image.convert("RGBA"), (0, 0))
    return canvas


def _pixel_diff(one: Image, two: Image) -> tuple[int, Image]:
    """(changed pixels, the difference image): pixelmatch over the box where the bytes differ (outside it
    nothing changed, and pure-Python pixelmatch is slow on a whole page)."""
    from PIL import Image as PILImage
    from PIL import ImageChops
    from pixelmatch.contrib.PIL import pixelmatch

    white = PILImage.new("RGBA", one.size, (255, 255, 255, 255))
    faded = ImageChops.blend(white, one.convert("LA").convert("RGBA"), 0.1)
    box = ImageChops.difference(one, two).getbbox(alpha_only=False)
    if box is None:
        return 0, faded
    crop = PILImage.new("RGBA", (box[2] - box[0], box[3] - box[1]))
    changed = pixelmatch(one.crop(box), two.crop(box), crop, threshold=PIXEL_THRESHOLD)
    faded.paste(crop, box[:2])
    return changed, faded


def page(report: DiffReport, *, old: Path, new: Path) -> str:
    """The index.html of the output folder: each shot's share of changed pixels and its images."""
    rows = []
    for s in report.shots:
        side, dif = html.escape(s.side_by_side.name), html.escape(s.difference.name)
        rows.append(
            f"<h2>{html.escape(s.name)}: {s.share:.3f}% of the pixels changed</h2>\n"
            f'<p><a href="{side}">old | new</a> · <a href="{dif}">difference</a></p>\n'
            f'<p><img src="{side}" alt="old and new side by side" style="max-width:100%">'
            f'<img src="{dif}" alt="the changed pixels in red" style="max-width:49%"></p>'
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>digest diff</title></head>\n'
        "<body>\n"
        f"<h1>{html.escape(str(old))} → {html.escape(str(new))}</h1>\n"
        + "\n".join(rows)
        + "\n</body></html>\n"
    )

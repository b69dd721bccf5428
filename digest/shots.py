"""out/<slug>/digest.html -> four full-page PNGs (375 and 640 px wide, light and dark) in headless Chromium.

The browser is the system's Chromium (Debian's `chromium` package, or $DIGEST_CHROMIUM), driven by
Playwright; no browser is downloaded. The page gets no network at all:

- requests under `<base_url><slug>/` (where the email's absolute links point) are answered from the
  build folder; a file that is not there is a 404;
- images anywhere else (an item's `image` on another host) get a grey placeholder of 1200x675, so the
  layout is realistic, and are listed as not checked: whether a remote host serves them is not a
  property of the build;
- everything else (web fonts, scripts) is blocked, as many mail clients do.

A screenshot run fails when, at any width, the page scrolls sideways (its content is wider than the
viewport), when on a phone (375 px) the text starts more than 24 px from the edge, or when an image does
not load: a 404 under the build folder, or a file that is not an image.
The PNGs are written even then, so the failure can be seen. With strict=False the problems are returned in
`Shots.problems` instead of raised (to show them, e.g. beside the archive page, without failing).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from digest.errors import BrowserError, OutputError, ScreenshotError
from digest.fsutil import atomic_write
from digest.outdir import SCHEMES, WIDTHS, shot_name

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

VIEWPORT_HEIGHT = 800
MOBILE_MAX = 480  # widths up to this are a phone's: the margins must be narrow there
MOBILE_INSET = 24  # px between the screen's edge and the text, at most, on a phone
TIMEOUT_MS = 30_000
# Playwright adds --headless itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",  # as root in a container the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home from a machine without internet
    "--disable-component-update",
    "--disable-sync",
]
PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675" viewBox="0 0 1200 675">'
    '<rect width="1200" height="675" fill="#9aa5b1"/>'
    '<text x="600" y="350" font-family="sans-serif" font-size="40" text-anchor="middle" fill="#1f2933">'
    "remote image (not fetched)</text></svg>"
)


@dataclass(frozen=True)
class Shots:
    """What a screenshot run produced and found."""

    files: tuple[Path, ...]
    problems: tuple[str, ...]  # empty unless strict=False: then what ScreenshotError would have listed
    remote_images: tuple[str, ...]


def find_chromium() -> str | None:
    """The Chromium to drive: $DIGEST_CHROMIUM, else chromium (Debian) or chromium-browser on the PATH."""
    configured = os.environ.get("DIGEST_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def open_browser(executable: str | None = None) -> Iterator[Browser]:
    """Start headless Chromium under Playwright; closed on exit."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise BrowserError(
            "screenshots need Playwright: pip install 'newsletter-digest[browser]' "
            "(it drives the system's Chromium)"
        ) from err
    path = executable or find_chromium()
    if path is None:
        raise BrowserError(
            "no Chromium found: install Debian's chromium package (apt-get install chromium) "
            "or set DIGEST_CHROMIUM to the browser's path"
        )
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, timeout=TIMEOUT_MS)
        except PlaywrightError as err:
            raise BrowserError(f"{path}: Chromium did not start: {_first_line(err)}") from err
        try:
            yield browser
        finally:
            browser.close()


def take_screenshots(
    folder: Path,
    *,
    base_url: str,
    slug: str,
    browser: Browser | None = None,
    page_name: str = "digest.html",
    strict: bool = True,
) -> Shots:
    """Screenshot folder/digest.html at each width and colour scheme; ScreenshotError on problems (strict)."""
    if not (folder / page_name).is_file():
        raise BrowserError(f"{folder / page_name}: not built yet (run `digest build` first)")
    if browser is None:
        # Playwright's sync API refuses to start in a thread that runs an asyncio loop (a notebook, a test
        # holding another browser): a thread of its own always works.
        def run() -> Shots:
            with open_browser() as own:
                return take_screenshots(
                    folder, base_url=base_url, slug=slug, browser=own, page_name=page_name, strict=strict
                )

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-shots") as pool:
            return pool.submit(run).result()

    from playwright.sync_api import Error as PlaywrightError

    prefix = f"{base_url}{slug}/"
    root = folder.resolve()
    problems: list[str] = []
    remote: list[str] = []
    files: list[Path] = []
    for width in WIDTHS:
        for scheme in SCHEMES:
            missing: list[str] = []

            def handle(route: Route) -> None:  # one argument: Playwright passes the request to two
                request = route.request
                url = request.url
                if url.startswith(prefix):
                    target = _in_folder(root, url, prefix)
                    if target is not None:
                        route.fulfill(path=target)
                        return
                    if request.resource_type == "image":
                        missing.append(url)  # noqa: B023 - used before the loop moves on
                    route.fulfill(status=404, content_type="text/plain", body="not in the build folder")
                elif request.resource_type == "image" and url.startswith(("http://", "https://")):
                    if url not in remote:
                        remote.append(url)
                    route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER_SVG)
                else:
                    route.abort("blockedbyclient")

            name = shot_name(width, scheme)
            context = browser.new_context(
                viewport={"width": width, "height": VIEWPORT_HEIGHT},
                color_scheme="dark" if scheme == "dark" else "light",
                device_scale_factor=1,
                java_script_enabled=True,  # for our own measurements; mail clients run no scripts
            )
            try:
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.route("**/*", handle)
                response = page.goto(prefix + page_name, wait_until="load")
                if response is None or not response.ok:
                    raise BrowserError(f"{folder / page_name}: the browser could not load it")
                measured: dict[str, Any] = page.evaluate(_MEASURE)
                png = page.screenshot(full_page=True, type="png")
            except PlaywrightError as err:
                raise BrowserError(
                    f"{folder / page_name} at {width} px ({scheme}): {_first_line(err)}"
                ) from err
            finally:
                context.close()
            try:
                atomic_write(folder / name, png)
            except OSError as err:
                raise OutputError(f"{folder / name}: cannot write the screenshot: {err.strerror}") from err
            files.append(folder / name)
            if measured["scrollWidth"] > measured["width"]:
                culprit = measured.get("culprit") or "the page"
                problems.append(
                    f"{name}: the page scrolls sideways at {width} px: "
                    f"it is {measured['scrollWidth']} px wide; "
                    f"the cause: {culprit} (give it width:100% and a max-width instead of a fixed width)"
                )
            inset = measured.get("inset")
            if width <= MOBILE_MAX and inset is not None and inset > MOBILE_INSET:
                problems.append(
                    f"{name}: the text starts {inset} px from the edge at {width} px (at most {MOBILE_INSET} "
                    f"on a phone): {measured['insetText']!r} (check the side padding of the "
                    "max-width: 480px media query: on both a section and its text, the two add up)"
                )
            broken = list(dict.fromkeys([*missing, *(u for u in measured["broken"] if u not in remote)]))
            for url in broken:
                if url in missing:
                    where = "not in the build folder"
                elif url.startswith(prefix):
                    where = "the file in the build folder is not an image the browser can show"
                else:
                    where = "it did not load"
                problems.append(f"{name}: the image {url} does not load ({where})")
    if problems and strict:  # each names its screenshot, and each URL is listed once: no duplicates
        raise ScreenshotError(problems)
    return Shots(files=tuple(files), problems=tuple(problems), remote_images=tuple(remote))


# Measured in the page: the viewport width, how wide the content is, the outermost element sticking out,
# and the images that did not load (complete and with a natural width means loaded).
_MEASURE = """() => {
  const doc = document.documentElement;
  const width = doc.clientWidth;
  const scrollWidth = Math.max(doc.scrollWidth, document.body ? document.body.scrollWidth : 0);
  let culprit = null;
  if (scrollWidth > width) {
    const sticksOut = el => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.right > width + 0.5;
    };
    const fixed = el => Math.max(parseFloat(el.getAttribute('width')) || 0,
      el.style.width.endsWith('px') ? parseFloat(el.style.width) : 0, parseFloat(el.style.minWidth) || 0);
    const out = Array.from(document.body.querySelectorAll('*')).filter(sticksOut);
    // The cause: of the elements given a fixed width wider than the viewport, the one reaching furthest
    // right (a 900 px table inside a 700 px box: fixing the box alone fixes nothing); else, of those
    // sticking out none of whose children does (a long word, an image), the one reaching furthest.
    const furthest = els => els.reduce((a, e) =>
      a === null || e.getBoundingClientRect().right > a.getBoundingClientRect().right ? e : a, null);
    const el = furthest(out.filter(e => fixed(e) > width))
      || furthest(out.filter(e => !Array.from(e.children).some(sticksOut)));
    if (el) {
      const cls = el.getAttribute('class');
      const text = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
      culprit = '<' + el.tagName.toLowerCase() + (cls ? ' class="' + cls + '"' : '') + '> '
        + Math.round(el.getBoundingClientRect().width) + ' px wide' + (text ? ' ("' + text + '")' : '');
    }
  }
  // Where the text starts: the visible text nearest the start edge (left, or right in a right-to-left page).
  const rtl = getComputedStyle(document.body || doc).direction === 'rtl';
  let inset = null, insetText = '';
  const walker = document.createTreeWalker(document.body || doc, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width < 1 || r.height < 1) continue;  // hidden (the preheader) or collapsed
      const gap = rtl ? width - r.right : r.left;
      if (gap >= 0 && (inset === null || gap < inset)) {
        inset = gap;
        insetText = node.textContent.trim().replace(/\\s+/g, ' ').slice(0, 40);
      }
    }
  }
  const broken = Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0))
    .map(img => img.currentSrc || img.src || img.getAttribute('src') || '(no src)');
  return {width, scrollWidth, culprit, broken, inset: inset === null ? null : Math.round(inset), insetText};
}"""


def _in_folder(root: Path, url: str, prefix: str) -> Path | None:
    """The file of the build folder a URL under the prefix names, or None (never outside the folder)."""
    rel = unquote(urlsplit(url).path)[len(urlsplit(prefix).path) :] or "index.html"
    if rel.endswith("/"):
        rel += "index.html"
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        return None
    return target if target.is_file() else None


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or ["unknown error"])[0]

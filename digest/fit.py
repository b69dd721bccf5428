"""[email] fit: keep the email's HTML under a budget by moving items to the web version, item by item.

The email keeps, in every category, its newest item and every `pinned: true` item; the others move behind
the section's existing "N more in <category>" link (to the web version, which shows every item), the
deepest first: the category showing the most items gives up its oldest one, so the categories shrink
evenly and each keeps its newest.

Rendering (Jinja2, MJML, premailer) a 300-item digest takes a while, so the fit does not render once per
moved item. The removal order is fixed up front and each item gets an estimated weight (its text's
length plus its markup); the digest with nothing moved and the one with everything movable moved bracket
the answer, and each further render tests the number of moved items that a straight line between the two
nearest measured points says fits, narrowing the bracket. The result is always a measured render under the
budget (or, when even the bracket's smallest end is over, that end, with `fits` false).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from digest.config import Config
from digest.items import Item
from digest.render import GREETING, UNSUBSCRIBE_URL, Rendered, Renderer
from digest.select import Digest

# The markup around one item in the default template (heading, date line, paragraphs, "Read more" link,
# after premailer's inlined styles), in bytes: the part of an item's share that its text does not say.
ITEM_MARKUP = 900
MAX_RENDERS = 6  # the first render included; the answer is verified whatever this cuts short


@dataclass(frozen=True)
class Fitted:
    """What the fit did: the email's selection and rendering, what moved, and what it cost."""

    digest: Digest  # what the email shows (the web version shows every item)
    email: Rendered
    moved: tuple[Item, ...]  # moved to the web version by the fit, in the order they moved
    budget: int  # bytes
    before: int  # bytes of the email's HTML before the fit
    after: int  # bytes of the email's HTML as fitted
    renders: int  # renders of the email, the first one included
    fits: bool  # False: even the newest and pinned items alone are over the budget

    def shortfall(self) -> str:
        """The build's warning when even what the fit must keep is over the budget."""
        return (
            f"fit: even the pinned items and the newest of each category make {_kb(self.after)} of HTML, "
            f"over the budget of {_kb(self.budget)}: the email keeps only those ({len(self.moved)} moved "
            "to the web version); shorten their summaries, unpin some or raise [email] fit_budget"
        )

    def summary(self) -> str:
        """What `digest build` says about the fit."""
        if not self.moved:
            return f"fit: the email is {_kb(self.before)}, under {_kb(self.budget)}: nothing moved"
        n = len(self.moved)
        if not self.fits:
            return f"fit: moved {n} {'item' if n == 1 else 'items'} to the web version; still over the budget"
        return (
            f"fit: moved {n} {'item' if n == 1 else 'items'} to the web version to stay under "
            f"{_kb(self.budget)} ({_kb(self.before)} -> {_kb(self.after)}, {self.renders} renders)"
        )


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB"


def removal_order(digest: Digest) -> list[Item]:
    """The items the fit may move, first to go first: never a category's newest nor a pinned item."""
    ranked: list[tuple[int, float, str, Item]] = []
    for section in digest.sections:
        movable = [i for i in section.items[1:] if not i.pinned]  # section.items: newest first
        for depth, item in enumerate(movable):
            ranked.append((-depth, item.when.timestamp(), item.slug, item))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked]


def without(digest: Digest, moved: list[Item]) -> Digest:
    """The digest with these items moved out of the email: each section's "more" counts them."""
    gone = {i.slug for i in moved}
    sections = []
    for s in digest.sections:
        kept = tuple(i for i in s.items if i.slug not in gone)
        sections.append(replace(s, items=kept, more=s.more + len(s.items) - len(kept)))
    return replace(digest, sections=tuple(sections))


def weight(item: Item) -> int:
    """An item's estimated share of the email's bytes (links appear twice: the title's and "Read more")."""
    text = len(item.title) * 2 + len(item.summary) + len(item.body) + len(item.author or "")
    links = 2 * len(item.url or "") + len(item.image or "") + len(item.image_alt or "")
    return ITEM_MARKUP + text + links


def fit(
    digest: Digest,
    first: Rendered,
    *,
    render: Callable[[Digest], Rendered],
    measure: Callable[[Rendered], int],
    budget: int,
    max_renders: int = MAX_RENDERS,
) -> Fitted:
    """Move items out of the email until `measure` of its rendering is at most `budget` bytes.

    `first` is the rendering of `digest` as selected; `render` renders another selection; `measure` says
    how many bytes of HTML a subscriber receives of a rendering.
    """
    before = measure(first)
    if before <= budget:
        return Fitted(digest, first, (), budget, before, before, 1, True)
    order = removal_order(digest)
    cumulative = [0]
    for item in order:
        cumulative.append(cumulative[-1] + weight(item))
    renders = 1
    # Measured points: moved count -> (size, rendering). 0 is over the budget.
    seen: dict[int, tuple[int, Rendered]] = {0: (before, first)}

    def attempt(m: int) -> int:
        nonlocal renders
        rendered = render(without(digest, order[:m]))
        renders += 1
        seen[m] = (measure(rendered), rendered)
        return seen[m][0]

    lo, hi = 0, len(order)
    if hi and attempt(hi) <= budget:
        while hi - lo > 1 and renders < max_renders:
            m = _guess(cumulative, lo, seen[lo][0], hi, seen[hi][0], budget)
            if attempt(m) <= budget:
                hi = m
            else:
                lo = m
    size, rendered = seen[hi]
    return Fitted(
        digest=without(digest, order[:hi]),
        email=rendered,
        moved=tuple(order[:hi]),
        budget=budget,
        before=before,
        after=size,
        renders=renders,
        fits=size <= budget,
    )


def _guess(cumulative: list[int], lo: int, lo_size: int, hi: int, hi_size: int, budget: int) -> int:
    """The fewest moved items that fit by a straight line between two measured points, strictly between."""
    per_weight = (lo_size - hi_size) / max(1, cumulative[hi] - cumulative[lo])
    needed = cumulative[lo] + (lo_size - budget) / per_weight if per_weight > 0 else cumulative[hi]
    m = lo + 1
    while m < hi - 1 and cumulative[m] < needed:
        m += 1
    return m


def fit_email(config: Config, digest: Digest, first: Rendered, renderer: Renderer) -> Fitted:
    """fit() with the workspace's budget and the build's measure: what [email] fit does to a digest."""
    measure = preview_bytes(config, now=renderer.now, lang=renderer.lang)
    return fit(digest, first, render=renderer.render, measure=measure, budget=config.email.fit_budget * 1024)


def preview_bytes(config: Config, *, now: datetime, lang: str | None = None) -> Callable[[Rendered], int]:
    """A measure of a rendering: the bytes of digest.html as the build writes it (the preview recipient's
    greeting and unsubscribe link in place of the placeholders), which is what a subscriber receives."""
    from digest.message import personaliser, preview_recipient
    from digest.outdir import Parts

    to = preview_recipient(config).addr_spec
    placeholders = {"greeting": GREETING, "unsubscribe_url": UNSUBSCRIBE_URL}

    def measure(rendered: Rendered) -> int:
        parts = Parts(
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            content_hash="",
            placeholders=placeholders,
        )
        maker = personaliser(config, parts, now=now, preview=True, lang=lang)
        html, _text = maker.fill(maker.values(to))
        return len(html.encode())

    return measure

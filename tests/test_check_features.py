"""digest check, client support: the scanner of what an HTML document uses (digest/check/features.py), on its
own with the slugs it is given, and through clients.features with the data it is given.

The scanner's reading of elements, attributes and CSS is pinned in test_check_clients.py; here, what the
slugs it is handed do, and the pseudo-classes caniemail files as elements.
"""

from __future__ import annotations

from test_check_clients import small_data

from digest.check.clients import features, load_data
from digest.check.features import used_features

PAGE = """<!doctype html><html><head><style>
p:first-child::after { color: red }
a:before { content: "x" }
</style></head><body><div style="display:flex; color: var(--c)"><p>x</p></div></body></html>
"""


def test_only_the_slugs_given_are_found() -> None:
    everything = used_features(PAGE, load_data().features)
    assert {"css-display-flex", "css-variables", "html-div", "html-doctype"} <= set(everything)
    found = used_features(PAGE, {"css-display-flex", "html-p"})
    assert set(found) == {"css-display-flex", "html-p"}
    assert found["css-display-flex"].example == "display:flex" and found["css-display-flex"].line == 4
    assert used_features(PAGE, ()) == {}


def test_features_uses_the_data_it_is_given() -> None:
    assert set(features(PAGE, small_data({}, slug="css-variables"))) == {"css-variables"}
    assert "css-display-flex" in features(PAGE)  # the shipped data by default


def test_before_and_after_are_elements_even_with_one_colon() -> None:
    found = used_features(PAGE, load_data().features)
    assert found["css-pseudo-element-after"].line == 2
    assert found["css-pseudo-element-before"].example == "a:before"
    assert found["css-pseudo-class-first-child"].example == "p:first-child::after"

"""[languages.xx] tables: the texts of the digest in each further language, checked with the same checks
as their top-level settings (digest/config/values.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.config.values import categories, display_name, greeting, language, line, nonempty_line, text


@dataclass(frozen=True, kw_only=True)
class LanguageTexts:
    """One [languages.xx] table: the texts of the digest in a further language (empty: the top-level one)."""

    code: str
    title: str = ""
    intro: str = ""
    subject: str = ""
    preheader: str = ""
    greeting: str = ""
    greeting_fallback: str = ""
    order: tuple[str, ...] = ()  # the sections' order in this language's digest (): [categories] order
    from_name: str = ""  # the From display name of this language's messages ("": [email] from's)


# Each key of a [languages.xx] table, checked as its top-level setting is.
_CHECKS: dict[str, Any] = {
    "title": nonempty_line,
    "intro": text,
    "subject": nonempty_line,
    "preheader": line,
    "greeting": greeting,
    "greeting_fallback": line,
    "order": categories,
    "from_name": display_name,
}


def languages(v: Any) -> tuple[LanguageTexts, ...]:
    """[languages.fr], [languages.es]...: title, intro, subject and preheader for each further language."""
    if not isinstance(v, dict) or not all(isinstance(x, dict) for x in v.values()):
        raise ValueError("expected tables like [languages.fr] with title, intro and subject")
    out = []
    for code, table in v.items():
        try:
            lang = language(code)
            unknown = sorted(set(table) - set(_CHECKS))
            if unknown:
                raise ValueError(f"unknown key {unknown[0]!r}; keys are {', '.join(_CHECKS)}")
            out.append(LanguageTexts(code=lang, **{k: _named(k, _CHECKS[k], table[k]) for k in table}))
        except ValueError as err:
            raise ValueError(f"[languages.{code}]: {err}") from err
    return tuple(out)


def _named(key: str, check: Any, value: Any) -> Any:
    """A key of a [languages.xx] table, checked; its errors name the key."""
    try:
        return check(value)
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from err

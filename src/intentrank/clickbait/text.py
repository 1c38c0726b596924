"""Title validation and style normalisation shared by every backend.

Normalisation removes what identifies an outlet rather than clickbait: casing (BuzzFeed writes Title
Case), typographic quotes, dashes and ellipses, repeated whitespace and control characters. It is the
same at training and scoring time, so a lower-cased title scores like its original.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from intentrank.errors import IntentRankError

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2026": "...",
    }
)
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_titles(titles: Sequence[object]) -> list[str]:
    """Check that ``titles`` is a sequence of strings; raise IntentRankError naming the first bad one."""
    if isinstance(titles, str | bytes):
        raise IntentRankError("titles must be a sequence of strings, not a single string; wrap it in a list")
    try:
        items = list(titles)
    except TypeError:
        raise IntentRankError(f"titles must be a sequence of strings, got {type(titles).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise IntentRankError(
                f"title at index {i} is {type(t).__name__} ({t!r:.60}), not a string; "
                "convert or drop it first"
            )
    return items  # type: ignore[return-value]


def normalise_title(title: str, max_chars: int = 2000) -> str:
    """Style-normalised title: NFKC, ASCII quotes/dashes, lower case, single spaces, cut to max_chars."""
    t = unicodedata.normalize("NFKC", title[: 4 * max_chars]).translate(_TRANSLATE)
    t = _SPACE.sub(" ", _CONTROL.sub(" ", t)).strip().lower()
    return t[:max_chars].rstrip()


def normalise_titles(titles: Sequence[object], max_chars: int = 2000) -> list[str]:
    """Validate and normalise a batch of titles (see :func:`normalise_title`)."""
    return [normalise_title(t, max_chars) for t in validate_titles(titles)]

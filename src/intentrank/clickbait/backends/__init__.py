"""Scoring backends of the clickbait scorer, selectable by name (see :func:`get_backend`).

Each backend maps normalised titles to a raw regression output on the Webis-17 ``truth_mean`` scale;
:class:`intentrank.clickbait.scorer.ClickbaitScorer` clips it to [0, 1]. Backends are imported lazily
so that loading the lexical model never imports the encoder runtime.
"""

from __future__ import annotations

from intentrank.clickbait.backends.base import Backend, backend_class

__all__ = ["Backend", "backend_class"]

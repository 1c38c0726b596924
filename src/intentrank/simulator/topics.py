"""Deterministic topic assignment of headlines by keyword lexicon (cheap, explainable, seed-free).

A title gets the topic whose keywords it matches most often (ties: the earlier topic in
:data:`TOPICS`); a title matching none goes to the nearest topic centroid in TF-IDF space, or to
``"general"`` if it resembles none. Matching is on lower-cased word tokens (and two-word phrases),
with a keyword ending in ``*`` matching any word with that prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "politics": (
        "obama",
        "trump",
        "clinton",
        "president",
        "election*",
        "senat*",
        "congress*",
        "vote*",
        "voter*",
        "democrat*",
        "republican*",
        "gop",
        "minister",
        "parliament*",
        "government*",
        "policy",
        "law",
        "bill",
        "court",
        "judge",
        "campaign*",
        "governor",
        "political",
        "mayor",
    ),
    "world": (
        "war",
        "military",
        "army",
        "attack*",
        "killed",
        "kills",
        "dead",
        "bomb*",
        "syria*",
        "iraq*",
        "iran*",
        "israel*",
        "russia*",
        "china",
        "chinese",
        "india*",
        "pakistan*",
        "afghan*",
        "korea*",
        "ukrain*",
        "refugee*",
        "terror*",
        "police",
        "shooting",
        "earthquake",
        "flood*",
        "storm",
        "crash",
    ),
    "business": (
        "market*",
        "stock*",
        "bank*",
        "econom*",
        "compan*",
        "billion",
        "million",
        "deal",
        "trade",
        "profit*",
        "sales",
        "price*",
        "oil",
        "job*",
        "ceo",
        "tax*",
        "business*",
        "investor*",
        "shares",
    ),
    "technology": (
        "apple",
        "google",
        "facebook",
        "twitter",
        "iphone",
        "microsoft",
        "tech*",
        "internet",
        "app",
        "apps",
        "phone*",
        "computer*",
        "software",
        "online",
        "robot*",
        "amazon",
        "samsung",
        "instagram",
        "snapchat",
        "video game*",
        "emoji*",
        "hack*",
    ),
    "science": (
        "scien*",
        "study",
        "research*",
        "space",
        "nasa",
        "planet*",
        "climate",
        "species",
        "dinosaur*",
        "discover*",
        "universe",
        "mars",
        "energy",
        "environment*",
        "fossil",
        "physic*",
    ),
    "health": (
        "health*",
        "cancer",
        "doctor*",
        "hospital*",
        "disease*",
        "virus",
        "drug*",
        "medical",
        "ebola",
        "diet",
        "weight",
        "sleep",
        "brain",
        "body",
        "mental",
        "vaccine*",
        "patients",
        "fat",
    ),
    "sports": (
        "game",
        "games",
        "team",
        "win",
        "wins",
        "won",
        "cup",
        "league",
        "nba",
        "nfl",
        "football",
        "soccer",
        "baseball",
        "basketball",
        "tennis",
        "olympic*",
        "player*",
        "coach",
        "season",
        "yankees",
        "mets",
        "champion*",
        "match",
        "golf",
        "cricket",
        "score*",
    ),
    "entertainment": (
        "movie*",
        "film*",
        "star*",
        "celebrit*",
        "music",
        "song*",
        "album",
        "singer",
        "actor*",
        "actress",
        "hollywood",
        "oscar*",
        "tv",
        "show",
        "shows",
        "disney",
        "harry potter",
        "taylor swift",
        "kardashian*",
        "beyonce",
        "netflix",
        "episode",
        "band",
        "kanye",
        "justin bieber",
        "game of thrones",
        "character*",
    ),
    "lifestyle": (
        "life",
        "love",
        "friend*",
        "dog*",
        "cat",
        "cats",
        "girl*",
        "guy*",
        "people",
        "wedding",
        "mom",
        "dad",
        "parent*",
        "kid*",
        "baby",
        "babies",
        "relationship*",
        "fashion",
        "hair",
        "style",
        "quiz",
        "things",
        "boyfriend",
        "girlfriend",
        "perfect",
        "photos",
        "pictures",
    ),
    "food": (
        "food*",
        "eat*",
        "cook*",
        "recipe*",
        "pizza",
        "chocolate",
        "restaurant*",
        "drink*",
        "coffee",
        "wine",
        "beer",
        "cake",
        "cheese",
        "breakfast",
        "dinner",
        "taste*",
        "snack*",
    ),
    "travel": (
        "travel*",
        "city",
        "cities",
        "country",
        "trip",
        "vacation",
        "beach",
        "hotel*",
        "flight*",
        "airport",
        "island*",
        "tourist*",
        "london",
        "paris",
        "places",
        "abroad",
    ),
}

#: All topics in id order; ``"general"`` (id 0) takes titles that match no keyword.
TOPICS: tuple[str, ...] = ("general", *TOPIC_KEYWORDS)

_TOKEN_PATTERN = r"(?u)\b[a-z0-9]+\b"


def _keyword_matrix(vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """(vocabulary × topics) 0/1 matrix: which topic each vocabulary word is a keyword of."""
    from scipy import sparse

    unigrams = np.array(sorted(t for t in vocabulary if " " not in t))
    rows, cols = [], []
    for tid, words in enumerate(TOPIC_KEYWORDS.values(), start=1):
        for w in words:
            if w.endswith("*"):  # every unigram with this prefix: a contiguous run of the sorted vocabulary
                pre = w[:-1]
                lo, hi = np.searchsorted(unigrams, [pre, pre + "\uffff"])
                hits = [vocabulary[t] for t in unigrams[lo:hi]]
            else:
                hits = [vocabulary[w]] if w in vocabulary else []
            rows.extend(hits)
            cols.extend([tid] * len(hits))
    data = np.ones(len(rows), dtype=np.float32)
    mat = sparse.csr_matrix((data, (rows, cols)), shape=(len(vocabulary), len(TOPICS)))
    mat.data[:] = 1.0  # a word listed twice under one topic still counts once
    return mat


def assign_topics(titles: Sequence[str], min_similarity: float = 0.05) -> np.ndarray:
    """Topic id (index into :data:`TOPICS`) of each title, int16.

    Step 1: keyword counts (unigrams and bigrams, lower-cased; most matches wins, ties to the lower id).
    Step 2: a title with no keyword goes to the topic whose TF-IDF centroid (of the step-1 titles) it is
    most similar to, if the cosine similarity is at least ``min_similarity``; otherwise ``general``.
    """
    if len(titles) == 0:
        return np.zeros(0, dtype=np.int16)
    from scipy import sparse  # heavy imports only when topics are not cached
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vec = TfidfVectorizer(
        lowercase=True,
        token_pattern=_TOKEN_PATTERN,
        ngram_range=(1, 2),
        min_df=1,
        sublinear_tf=True,
        norm="l2",
    )
    tfidf = vec.fit_transform(titles)
    counts = (tfidf > 0).astype(np.float32) @ _keyword_matrix(vec.vocabulary_)
    counts = np.asarray(counts.todense())
    topic = np.argmax(counts, axis=1)
    matched = counts.max(axis=1) > 0
    topic[~matched] = 0
    if matched.any() and (~matched).any():
        onehot = sparse.csr_matrix(
            (np.ones(matched.sum(), dtype=np.float32), (topic[matched], np.flatnonzero(matched))),
            shape=(len(TOPICS), len(titles)),
        )
        centroids = normalize(onehot @ tfidf)
        sims = np.asarray((tfidf[~matched] @ centroids.T).todense())
        sims[:, 0] = -1.0
        best = np.argmax(sims, axis=1)
        ok = sims[np.arange(len(best)), best] >= min_similarity
        topic[np.flatnonzero(~matched)[ok]] = best[ok]
    return topic.astype(np.int16)

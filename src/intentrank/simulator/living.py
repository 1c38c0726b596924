"""The living catalogue: news-like items published through the simulated time, live a while, retired.

From a pool of scored headlines (the shipped datasets, scored by ``catalogue.build_catalogue``),
:func:`living_catalogue` draws a publication schedule over ``days`` simulated days (see
:class:`~intentrank.simulator.config.LivingConfig`):

- arrivals: a Poisson process of rate λ = ``live_items`` / ``lifetime_h`` items per hour;
- lifetimes: Exponential(mean ``lifetime_h``), so E[live items] = λ · mean lifetime = ``live_items``;
- the run starts in the steady state: ``live_items`` items already live at t = 0, published an
  Exponential(``lifetime_h``) time before (the age of a live item in a memoryless process);
- titles are taken from the pool in a seeded random order without repetition; only if the schedule
  needs more items than the pool holds are pool titles published again, marked in ``is_variant``.

Item ids are renumbered 0..N-1 in publication order; hidden truth (true clickbait, quality) travels with
each title. Scores come with the pool (scored once by the clickbait model, cached), so arrivals cost a
look-up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from intentrank.errors import ConfigError
from intentrank.simulator.catalogue import DAY_S, Catalogue
from intentrank.simulator.config import LivingConfig

HOUR_S = 3_600.0


def living_catalogue(pool: Catalogue, config: LivingConfig, days: int, seed: int = 0) -> Catalogue:
    """The items published over ``days`` days from ``pool`` (see the module docstring)."""
    if config.live_items > len(pool):
        raise ConfigError(
            f"simulator.living.live_items ({config.live_items:,}) exceeds the headline pool "
            f"({len(pool):,} items)"
        )
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x11FE]))
    mean_life = config.lifetime_h * HOUR_S
    horizon = days * DAY_S
    rate = config.live_items / mean_life  # items per second
    n_new = int(rng.poisson(rate * horizon))
    arrivals = np.sort(rng.uniform(0.0, horizon, n_new))  # a Poisson process given its count
    initial = -rng.exponential(mean_life, config.live_items)
    publish = np.concatenate([np.sort(initial), arrivals])
    n = len(publish)
    retire = np.concatenate(
        [rng.exponential(mean_life, config.live_items), rng.exponential(mean_life, n_new)]
    )
    retire = np.where(np.arange(n) < config.live_items, retire, publish + retire)
    order = rng.permutation(len(pool))
    rows = order[np.arange(n) % len(pool)]
    is_variant = np.arange(n) >= len(pool)
    items = pool.items.iloc[rows].reset_index(drop=True).copy()
    items["item_id"] = np.arange(n, dtype=np.int64)
    items["publish_ts"] = publish
    return Catalogue(
        items=items,
        true_clickbait=pool.true_clickbait[rows],
        quality=pool.quality[rows],
        topic_names=pool.topic_names,
        retire_ts=retire,
        is_variant=is_variant,
    )


def freshness(age_s: np.ndarray, config: LivingConfig) -> np.ndarray:
    """Interest multiplier ``2^(−age_h / half_life_h)`` (float32; age clipped at 0)."""
    age_h = np.maximum(np.asarray(age_s, dtype=np.float32), np.float32(0.0)) / np.float32(HOUR_S)
    return np.exp2(-age_h / np.float32(config.freshness_half_life_h)).astype(np.float32)


def schedule_summary(catalogue: Catalogue) -> pd.DataFrame:
    """One row per item: publish and retire times (hours) and whether it is a re-published variant."""
    if catalogue.retire_ts is None:
        raise ConfigError("schedule_summary: not a living catalogue")
    return pd.DataFrame(
        {
            "item_id": catalogue.item_id,
            "publish_h": catalogue.publish_ts64 / HOUR_S,
            "retire_h": catalogue.retire_ts / HOUR_S,
            "is_variant": catalogue.is_variant,
        }
    )

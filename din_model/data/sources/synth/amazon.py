"""A synthetic Amazon "Electronics" review set whose histories carry DIN's kind of signal.

The full Amazon Electronics files of the DIN paper cannot be downloaded on every
machine, yet the pipeline must be exercised at their scale (192,403 users,
63,001 items, 801 categories, 1,689,188 reviews, 5-core). This module generates
data of that shape; :mod:`din_model.data.sources.synth.writers` writes it in the 2014
file formats, so the real Amazon adapter reads it unchanged.

Generative model, and WHY each part is there
--------------------------------------------
*Catalogue.* Items are grouped into categories of long-tailed size (a Zipf
law, at least a few items each), and inside a category they lie on a line: an
item's *neighbourhood* is the items within ``neighbourhood`` places of it in
its category ("the other cases for this phone"). Every item has a popularity
weight from a heavy-tailed Pareto law with a floor, so a few items are bought
very often and most rarely, as in real review data, while nearly every item
still reaches the 5-review minimum of a 5-core set.

*Users.* Every user has 2-4 interest categories (drawn by category
popularity) and a number of reviews of at least 5 with a heavy tail
(log-normal), rescaled so the total is exactly the requested number.

*Sequences.* A user's first item comes from one of their interests. Every
later item is, with probability

- ``p_anchor``: drawn (by popularity) from the neighbourhood of ONE history
  item, chosen uniformly among the last ``anchor_window`` ones;
- ``p_interest``: drawn by popularity from one of the user's interest
  categories;
- otherwise: drawn by popularity from the whole catalogue (noise, and the
  drift into new interests that real users show).

WHY: the next item depends on a *subset* of the history (one anchor item),
not on the history as a whole. A model that pools the history with weights
that depend on the candidate (DIN's local activation unit) can pick out the
history item whose neighbourhood holds the candidate; mean or sum pooling
blurs the anchor with every other item of a multi-interest history, so it
only keeps the category-level part of the signal. The popularity and
interest parts keep the task from being trivial: a good share of positives
cannot be explained by any single history item, and popularity alone (an
item-bias model) already gives a fair AUC, as on the real data.

*Time.* Reviews are at day level (midnight UTC, like ``unixReviewTime``),
with about a quarter of consecutive reviews of a user on the same day (ties),
and dates that end by July 2014 and crowd into 2012-2014 like the real set.
The reviews file is written in time order, and a user's reviews of the same
day in the order they were generated, so that the protocol's stable sort
(timestamp, then line order) recovers the generated order exactly.

*5-core.* Users have at least 5 reviews by construction. Items that still
have fewer than 5 after generation take over reviews that came from the
popularity (noise) part, from items with reviews to spare, so the anchor
signal is untouched and the numbers of users, items and reviews stay exact.
No user reviews an item twice.

Everything is drawn from one ``numpy.random.Generator`` seeded by the
caller, in a fixed order, so a seed gives the same data (and, through the
writers, the same bytes) on every run. The hot paths are vectorised: the
only Python loops are over sequence positions and history offsets.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from din_model.errors import ConfigError

log = logging.getLogger(__name__)

GENERATOR_NAME = "din_model.data.sources.synth.amazon"
GENERATOR_VERSION = "1.0"
SYNTHETIC_MARKER = "SYNTHETIC.json"

MIN_REVIEWS = 5  # the 5-core property, for users and for items
MIN_USERS = 20
MIN_ITEMS = 20
MIN_CATEGORIES = 2
MIN_ITEMS_PER_CATEGORY = 3

# Where a review came from; stored with the events so the signal can be audited.
SOURCE_FIRST = 0
SOURCE_ANCHOR = 1
SOURCE_INTEREST = 2
SOURCE_POPULARITY = 3
SOURCE_REPAIR = 4
SOURCE_NAMES = ("first", "anchor", "interest", "popularity", "repair")

SECONDS_PER_DAY = 86_400
FIRST_DAY = 10_743  # 1999-06-01, the first month of the real Electronics reviews
LAST_DAY = 16_274  # 2014-07-23, the last day of the real Electronics reviews


@dataclass(frozen=True)
class SynthSizes:
    """How many users, items, categories and reviews to generate."""

    users: int
    items: int
    categories: int
    reviews: int


ELECTRONICS = SynthSizes(users=192_403, items=63_001, categories=801, reviews=1_689_188)


def max_reviews_per_user(items: int) -> int:
    """Cap on one user's reviews: no user can review more than half the catalogue."""
    return max(MIN_REVIEWS, min(500, items // 2))


def sizes_for_scale(scale: float) -> SynthSizes:
    """Sizes of the Electronics set multiplied by ``scale``.

    Users, items and reviews scale linearly. Categories scale too below 1.0
    (and stay 801 above), so the number of items per category, and with it
    the neighbourhood structure a model has to learn, is the same at every
    scale: a 2% set is a small copy of the full one, not a different task.
    Floors keep tiny scales valid 5-core sets.
    """
    if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"--scale must be a positive number, got {scale!r}")
    users = max(MIN_USERS, round(ELECTRONICS.users * scale))
    items = max(MIN_ITEMS, round(ELECTRONICS.items * scale))
    categories = min(
        ELECTRONICS.categories, max(MIN_CATEGORIES, round(ELECTRONICS.categories * scale))
    )
    categories = max(1, min(categories, items // MIN_ITEMS_PER_CATEGORY))
    reviews = max(round(ELECTRONICS.reviews * scale), MIN_REVIEWS * users, MIN_REVIEWS * items)
    reviews = min(reviews, users * max_reviews_per_user(items))
    return SynthSizes(users=users, items=items, categories=categories, reviews=reviews)


@dataclass(frozen=True)
class AmazonSynthParams:
    """Knobs of the generative model (see the module docstring for their role)."""

    interests_min: int = 2
    interests_max: int = 4
    p_anchor: float = 0.70
    p_interest: float = 0.15
    anchor_window: int = 20
    neighbourhood: int = 5
    category_zipf: float = 0.9
    popularity_pareto: float = 1.6
    popularity_floor: float = 1.0
    length_sigma: float = 1.0
    same_day_prob: float = 0.25
    gap_days_median: float = 30.0
    recent_days: float = 400.0

    def __post_init__(self) -> None:
        if not 1 <= self.interests_min <= self.interests_max:
            raise ConfigError("interests_min must be in 1..interests_max")
        if self.p_anchor < 0 or self.p_interest < 0 or self.p_anchor + self.p_interest > 1:
            raise ConfigError("p_anchor and p_interest must be >= 0 and sum to at most 1")
        if self.anchor_window < 1 or self.neighbourhood < 1:
            raise ConfigError("anchor_window and neighbourhood must be >= 1")


@dataclass
class SynthAmazon:
    """The generated data, as integer arrays (the writers turn them into files).

    Items are numbered so that each category is a contiguous range
    (``category_start[c]`` .. ``category_start[c + 1]``); events are sorted in
    file order (day, user, position within the user's sequence).
    """

    sizes: SynthSizes
    scale: float
    seed: int
    params: AmazonSynthParams
    user_ids: np.ndarray  # (users,) str, reviewerID
    item_asins: np.ndarray  # (items,) str, asin
    item_category: np.ndarray  # (items,) int32
    item_popularity: np.ndarray  # (items,) float64 weight
    category_start: np.ndarray  # (categories + 1,) int64
    event_user: np.ndarray  # (reviews,) int32 index into user_ids
    event_item: np.ndarray  # (reviews,) int32 index into item_asins
    event_day: np.ndarray  # (reviews,) int32 days since 1970-01-01
    event_position: np.ndarray  # (reviews,) int32 place in the user's sequence
    event_source: np.ndarray  # (reviews,) int8 SOURCE_*
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Counts and checks a user wants to see next to the files (deterministic)."""
        per_user = np.bincount(self.event_user, minlength=self.sizes.users)
        per_item = np.bincount(self.event_item, minlength=self.sizes.items)
        sources = np.bincount(self.event_source, minlength=len(SOURCE_NAMES))
        return {
            "users": int(self.sizes.users),
            "items": int(self.sizes.items),
            "categories": int(np.unique(self.item_category).size),
            "reviews": int(self.event_user.size),
            "min_reviews_per_user": int(per_user.min()),
            "max_reviews_per_user": int(per_user.max()),
            "min_reviews_per_item": int(per_item.min()),
            "max_reviews_per_item": int(per_item.max()),
            "first_day": _iso_day(int(self.event_day.min())),
            "last_day": _iso_day(int(self.event_day.max())),
            "reviews_by_source": {
                name: int(n) for name, n in zip(SOURCE_NAMES, sources, strict=True)
            },
        }

    def describe(self) -> dict[str, Any]:
        """The generator's provenance, written to ``SYNTHETIC.json``."""
        return {
            "generator": GENERATOR_NAME,
            "version": GENERATOR_VERSION,
            "format": "amazon-2014",
            "scale": float(self.scale),
            "sizes": asdict(self.sizes),
            "seed": int(self.seed),
            "parameters": asdict(self.params),
            "counts": self.counts(),
        }


def _iso_day(day: int) -> str:
    return str(np.datetime64(day, "D"))


# --------------------------------------------------------------------------------------
# catalogue


def _category_sizes(rng: np.random.Generator, sizes: SynthSizes, zipf: float) -> np.ndarray:
    """Long-tailed category sizes with a floor, summing exactly to the number of items."""
    floor = min(MIN_ITEMS_PER_CATEGORY, sizes.items // sizes.categories)
    weights = 1.0 / np.arange(1, sizes.categories + 1) ** zipf
    rest = sizes.items - floor * sizes.categories
    extra = rng.multinomial(rest, weights / weights.sum())
    return (floor + extra).astype(np.int64)


def _item_popularity(rng: np.random.Generator, items: int, params: AmazonSynthParams) -> np.ndarray:
    """Pareto weights with a floor: heavy head, and a tail that still gets reviewed."""
    return params.popularity_floor + rng.pareto(params.popularity_pareto, items)


class _Sampler:
    """Popularity-weighted draws from contiguous item ranges through one cumulative sum.

    A draw inside ``[lo, hi)`` is a uniform number in ``[cw[lo], cw[hi])``
    looked up with ``searchsorted``: one vectorised call for any number of
    ranges, which is what makes categories and neighbourhoods cheap.
    """

    def __init__(self, weights: np.ndarray, category_of: np.ndarray, category_start: np.ndarray):
        self.weights = weights
        self.cum = np.concatenate([[0.0], np.cumsum(weights)])
        self.category_of = category_of
        self.category_start = category_start
        self.n = weights.size

    def _lookup(self, target: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        found = np.searchsorted(self.cum, target, side="right") - 1
        return np.clip(found, lo, hi - 1).astype(np.int32)

    def in_range(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        u = rng.random(lo.size)
        target = self.cum[lo] + u * (self.cum[hi] - self.cum[lo])
        return self._lookup(target, lo, hi)

    def global_(self, rng: np.random.Generator, count: int) -> np.ndarray:
        lo = np.zeros(count, dtype=np.int64)
        return self.in_range(rng, lo, np.full(count, self.n, dtype=np.int64))

    def in_category(self, rng: np.random.Generator, categories: np.ndarray) -> np.ndarray:
        return self.in_range(
            rng, self.category_start[categories], self.category_start[categories + 1]
        )

    def near(self, rng: np.random.Generator, anchors: np.ndarray, radius: int) -> np.ndarray:
        """An item within ``radius`` places of each anchor in its category, never the anchor."""
        category = self.category_of[anchors]
        lo = np.maximum(self.category_start[category], anchors - radius)
        hi = np.minimum(self.category_start[category + 1], anchors + radius + 1)
        mass = self.cum[hi] - self.cum[lo] - self.weights[anchors]
        target = self.cum[lo] + rng.random(anchors.size) * mass
        target = target + (target >= self.cum[anchors]) * self.weights[anchors]
        found = self._lookup(target, lo, hi)
        # A category of one item has no neighbour: the draw returns the anchor, a
        # duplicate the caller re-draws.
        return found


# --------------------------------------------------------------------------------------
# users


def _review_counts(rng: np.random.Generator, sizes: SynthSizes, sigma: float) -> np.ndarray:
    """Reviews per user: at least 5, log-normal tail, capped, summing exactly to the total."""
    cap = max_reviews_per_user(sizes.items)
    spare = sizes.reviews - MIN_REVIEWS * sizes.users
    raw = rng.lognormal(0.0, sigma, sizes.users)
    share = raw * (spare / raw.sum())
    extra = np.floor(share).astype(np.int64)
    short = spare - int(extra.sum())
    if short > 0:  # largest fractional parts first; ties broken by index (stable)
        extra[np.argsort(-(share - extra), kind="stable")[:short]] += 1
    counts = np.minimum(MIN_REVIEWS + extra, cap)
    missing = sizes.reviews - int(counts.sum())
    while missing > 0:  # give what the cap removed to users with room, in a random order
        room = np.flatnonzero(counts < cap)
        chosen = rng.permutation(room)[:missing]
        counts[chosen] += 1
        missing -= chosen.size
    return counts


def _interests(
    rng: np.random.Generator, users: int, category_weight: np.ndarray, params: AmazonSynthParams
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's distinct interest categories, drawn by category popularity.

    Returns ``(interests, how_many)``: a (users, interests_max) array whose
    first ``how_many[u]`` entries of row ``u`` are the user's categories.
    """
    want = rng.integers(params.interests_min, params.interests_max + 1, users)
    want = np.minimum(want, category_weight.size)
    tries = 4 * params.interests_max
    cum = np.cumsum(category_weight / category_weight.sum())
    draws = np.minimum(np.searchsorted(cum, rng.random((users, tries)), side="right"), cum.size - 1)
    first = np.ones_like(draws, dtype=bool)
    for j in range(1, tries):
        first[:, j] = ~(draws[:, :j] == draws[:, j : j + 1]).any(axis=1)
    order = np.cumsum(first, axis=1)  # rank of each first occurrence
    keep = first & (order <= want[:, None])
    interests = np.full((users, params.interests_max), -1, dtype=np.int32)
    rows, cols = np.nonzero(keep)
    interests[rows, order[rows, cols] - 1] = draws[rows, cols]
    how_many = keep.sum(axis=1)
    return interests, how_many


# --------------------------------------------------------------------------------------
# sequences


def _generate_sequences(
    rng: np.random.Generator,
    lengths: np.ndarray,
    interests: np.ndarray,
    how_many: np.ndarray,
    sampler: _Sampler,
    params: AmazonSynthParams,
    progress: bool,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Items and sources per position, for users sorted by decreasing length.

    Position ``t`` is generated for all users that have one at once: with the
    users sorted by length they are a prefix ``[:n_t]``, so every position is a
    few vectorised draws and the history lives in ragged columns
    ``items[s][:n_t]`` (no dense users x max-length array).
    """
    from tqdm.auto import tqdm

    longest = int(lengths[0])
    active = np.searchsorted(-lengths, -np.arange(longest), side="left")  # users with length > t
    items: list[np.ndarray] = []
    sources: list[np.ndarray] = []
    bar = tqdm(
        total=int(lengths.sum()),
        desc="synth: sequences",
        unit="review",
        disable=not progress,
        leave=False,
    )
    for t in range(longest):
        n = int(active[t])
        if t == 0:
            source = np.full(n, SOURCE_FIRST, dtype=np.int8)
        else:
            u = rng.random(n)
            source = np.where(
                u < params.p_anchor,
                SOURCE_ANCHOR,
                np.where(
                    u < params.p_anchor + params.p_interest, SOURCE_INTEREST, SOURCE_POPULARITY
                ),
            ).astype(np.int8)
        chosen = np.empty(n, dtype=np.int32)
        todo = np.arange(n)
        for attempt in range(64):
            if todo.size == 0:
                break
            if attempt >= 8:  # a user stuck in a small neighbourhood falls back to popularity
                source[todo] = SOURCE_POPULARITY
            chosen[todo] = _draw(
                rng, t, todo, source[todo], items, interests, how_many, sampler, params
            )
            if attempt >= 32:  # last resort for tiny catalogues: uniform
                chosen[todo] = rng.integers(0, sampler.n, todo.size)
            seen = np.zeros(todo.size, dtype=bool)
            for s in range(t):
                seen |= items[s][todo] == chosen[todo]
            todo = todo[seen]
        if todo.size:
            raise RuntimeError(f"could not draw a new item for {todo.size} users at position {t}")
        items.append(chosen)
        sources.append(source)
        bar.update(n)
    bar.close()
    return items, sources


def _draw(
    rng: np.random.Generator,
    t: int,
    users: np.ndarray,
    source: np.ndarray,
    items: list[np.ndarray],
    interests: np.ndarray,
    how_many: np.ndarray,
    sampler: _Sampler,
    params: AmazonSynthParams,
) -> np.ndarray:
    """One candidate item for each of ``users`` at position ``t``, by its source."""
    out = np.empty(users.size, dtype=np.int32)
    by_interest = (source == SOURCE_FIRST) | (source == SOURCE_INTEREST)
    if by_interest.any():
        who = users[by_interest]
        pick = (rng.random(who.size) * how_many[who]).astype(np.int64)
        out[by_interest] = sampler.in_category(rng, interests[who, pick].astype(np.int64))
    by_anchor = source == SOURCE_ANCHOR
    if by_anchor.any():
        who = users[by_anchor]
        window = min(t, params.anchor_window)
        offset = 1 + (rng.random(who.size) * window).astype(np.int64)
        anchor = np.empty(who.size, dtype=np.int64)
        for back in range(1, window + 1):
            hit = offset == back
            anchor[hit] = items[t - back][who[hit]]
        out[by_anchor] = sampler.near(rng, anchor, params.neighbourhood)
    by_popularity = source == SOURCE_POPULARITY
    if by_popularity.any():
        out[by_popularity] = sampler.global_(rng, int(by_popularity.sum()))
    return out


# --------------------------------------------------------------------------------------
# time


def _days(rng: np.random.Generator, lengths: np.ndarray, params: AmazonSynthParams) -> np.ndarray:
    """Day of every event, in (user, position) order: non-decreasing per user, many ties."""
    users = lengths.size
    total = int(lengths.sum())
    pace = params.gap_days_median * rng.lognormal(0.0, 1.0, users)  # days between reviews
    owner = np.repeat(np.arange(users), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gap = rng.geometric(1.0 / (1.0 + pace[owner])) - 1
    gap[rng.random(total) < params.same_day_prob] = 0
    gap[starts] = 0
    run = np.cumsum(gap)
    run -= np.repeat(run[starts], lengths)  # days since the user's first review
    span = np.repeat(run[starts + lengths - 1], lengths)
    last = LAST_DAY - np.floor(rng.exponential(params.recent_days, users)).astype(np.int64)
    day = np.repeat(last, lengths) - (span - run)
    return np.maximum(day, FIRST_DAY).astype(np.int32)  # clipping keeps the order (ties)


# --------------------------------------------------------------------------------------
# 5-core repair


def _repair_item_core(
    rng: np.random.Generator, user: np.ndarray, item: np.ndarray, source: np.ndarray, n_items: int
) -> int:
    """Give items with fewer than 5 reviews reviews that came from the noise part.

    Each round pairs every missing review with a random popularity-drawn review
    of an item that can spare one, skipping pairs that would make a user
    review an item twice. Works in place; returns the number of reviews moved.
    """
    moved = 0
    for round_ in range(200):
        count = np.bincount(item, minlength=n_items)
        need = np.maximum(MIN_REVIEWS - count, 0)
        if not need.any():
            return moved
        slots = rng.permutation(np.repeat(np.arange(n_items, dtype=np.int32), need))
        donors_ok = count[item] > MIN_REVIEWS
        if round_ < 100:
            donors_ok &= source == SOURCE_POPULARITY
        pool = np.flatnonzero(donors_ok)
        if pool.size == 0:
            break
        donor = rng.permutation(pool)[: slots.size]
        slots = slots[: donor.size]
        # an item may give away only what it has above the minimum
        order = np.argsort(item[donor], kind="stable")
        ranked = np.empty(donor.size, dtype=np.int64)
        sorted_items = item[donor][order]
        group_start = np.searchsorted(sorted_items, sorted_items, side="left")
        ranked[order] = np.arange(donor.size) - group_start
        fine = ranked < count[item[donor]] - MIN_REVIEWS
        # no user may end with the same item twice
        existing = np.sort(user.astype(np.int64) * n_items + item)
        new_key = user[donor].astype(np.int64) * n_items + slots
        at = np.minimum(np.searchsorted(existing, new_key), existing.size - 1)
        fine &= existing[at] != new_key
        _, first = np.unique(new_key, return_index=True)
        unique_key = np.zeros(donor.size, dtype=bool)
        unique_key[first] = True
        fine &= unique_key
        item[donor[fine]] = slots[fine]
        source[donor[fine]] = SOURCE_REPAIR
        moved += int(fine.sum())
    raise RuntimeError("could not reach the 5-core property for items; use a larger --scale")


# --------------------------------------------------------------------------------------
# identifiers

_ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)


def _base36(values: np.ndarray, width: int) -> np.ndarray:
    """Fixed-width upper-case base-36 codes of non-negative integers, as a bytes array."""
    digits = np.empty((values.size, width), dtype=np.uint8)
    rest = values.astype(np.uint64)
    for j in range(width - 1, -1, -1):
        digits[:, j] = _ALNUM[(rest % 36).astype(np.int64)]
        rest //= 36
    return digits


def _unique_codes(rng: np.random.Generator, count: int, high: int) -> np.ndarray:
    """``count`` distinct random integers below ``high``, in random order."""
    codes = np.unique(rng.integers(0, high, count + count // 10 + 16, dtype=np.int64))
    while codes.size < count:
        codes = np.unique(np.concatenate([codes, rng.integers(0, high, count, dtype=np.int64)]))
    return rng.permutation(codes)[:count]


def _as_str(matrix: np.ndarray) -> np.ndarray:
    width = matrix.shape[1]
    return np.ascontiguousarray(matrix).view(f"S{width}").ravel().astype(f"U{width}")


def _reviewer_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """ "A" + 13 upper-case letters and digits, like 2014 reviewerIDs (AO94DHGC771SJ...)."""
    high = _unique_codes(rng, count, 36**6)
    low = rng.integers(0, 36**7, count, dtype=np.int64)
    letters = np.concatenate(
        [np.full((count, 1), ord("A"), dtype=np.uint8), _base36(high, 6), _base36(low, 7)], axis=1
    )
    return _as_str(letters)


def make_asins(rng: np.random.Generator, count: int) -> np.ndarray:
    """10-character asins: mostly "B00" + 7 letters/digits, some ISBN-like digit strings."""
    codes = _unique_codes(rng, count, 36**7)
    matrix = np.concatenate(
        [np.tile(np.frombuffer(b"B00", dtype=np.uint8), (count, 1)), _base36(codes, 7)], axis=1
    )
    isbn = rng.random(count) < 0.05  # books and media, as in the real file ("0528881469")
    digits = (codes[isbn] % 10**9).astype(np.int64)
    matrix[isbn, 0] = ord("0")
    for j in range(9, 0, -1):
        matrix[isbn, j] = ord("0") + (digits % 10)
        digits //= 10
    out = _as_str(matrix)
    if np.unique(out).size != count:  # a digit-only code may repeat: fall back to "B00" codes
        matrix[isbn] = np.concatenate(
            [
                np.tile(np.frombuffer(b"B00", dtype=np.uint8), (int(isbn.sum()), 1)),
                _base36(codes[isbn], 7),
            ],
            axis=1,
        )
        out = _as_str(matrix)
    return out


# --------------------------------------------------------------------------------------
# entry point


def generate_amazon(
    scale: float = 1.0,
    seed: int = 0,
    params: AmazonSynthParams | None = None,
    *,
    sizes: SynthSizes | None = None,
    progress: bool = False,
) -> SynthAmazon:
    """Generate a synthetic Amazon review set of ``scale`` times Electronics (see module doc)."""
    params = params or AmazonSynthParams()
    sizes = sizes or sizes_for_scale(scale)
    rng = np.random.default_rng(seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    category_size = _category_sizes(rng, sizes, params.category_zipf)
    category_start = np.concatenate([[0], np.cumsum(category_size)]).astype(np.int64)
    item_category = np.repeat(np.arange(sizes.categories, dtype=np.int32), category_size)
    popularity = _item_popularity(rng, sizes.items, params)
    sampler = _Sampler(popularity, item_category, category_start)
    category_weight = np.bincount(item_category, weights=popularity, minlength=sizes.categories)

    lengths = np.sort(_review_counts(rng, sizes, params.length_sigma))[::-1].copy()
    interests, how_many = _interests(rng, sizes.users, category_weight, params)
    timings["catalogue_s"] = time.perf_counter() - started

    columns, column_sources = _generate_sequences(
        rng, lengths, interests, how_many, sampler, params, progress
    )
    timings["sequences_s"] = time.perf_counter() - started - sum(timings.values())

    # ragged columns -> events in (user, position) order
    position = np.concatenate([np.full(c.size, t, dtype=np.int32) for t, c in enumerate(columns)])
    user = np.concatenate([np.arange(c.size, dtype=np.int32) for c in columns])
    item = np.concatenate(columns)
    source = np.concatenate(column_sources)
    order = np.lexsort((position, user))
    user, position, item, source = user[order], position[order], item[order], source[order]
    day = _days(rng, lengths, params)

    moved = _repair_item_core(rng, user, item, source, sizes.items)
    log.info(
        "generated %d sequences (longest %d) in %.1f s; 5-core repair moved %d noise reviews",
        sizes.users,
        int(lengths[0]),
        time.perf_counter() - started,
        moved,
    )
    timings["time_and_core_s"] = time.perf_counter() - started - sum(timings.values())

    # identifiers, then file order: day, a random user rank, position
    user_ids = _reviewer_ids(rng, sizes.users)
    item_asins = make_asins(rng, sizes.items)
    file_order = np.lexsort((position, user, day))
    timings["ids_s"] = time.perf_counter() - started - sum(timings.values())

    return SynthAmazon(
        sizes=sizes,
        scale=float(scale),
        seed=seed,
        params=params,
        user_ids=user_ids,
        item_asins=item_asins,
        item_category=item_category,
        item_popularity=popularity,
        category_start=category_start,
        event_user=user[file_order],
        event_item=item[file_order],
        event_day=day[file_order],
        event_position=position[file_order],
        event_source=source[file_order],
        timings=timings,
    )


def write_synthetic_amazon(
    out: str | Path,
    scale: float = 1.0,
    seed: int = 0,
    *,
    category: str = "Electronics",
    params: AmazonSynthParams | None = None,
    progress: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Generate and write a synthetic Amazon 2014 directory atomically; return its description.

    ``out`` is checked before generating: new, empty, or an earlier output of
    ours replaced only with ``force`` (:mod:`din_model.io.output_dir`).
    """
    from din_model.data.sources.synth.writers import write_amazon_2014_dir
    from din_model.io.output_dir import claim_output_dir

    claim_output_dir(out, command="synth", force=force)
    data = generate_amazon(scale, seed, params, progress=progress)
    return write_amazon_2014_dir(data, out, category=category, progress=progress, force=force)

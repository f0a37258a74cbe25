"""Write a :class:`SynthAmazon` in the Amazon 2014 file formats, byte-identically per seed.

Files (for ``category="Electronics"``), as the McAuley lab ships them:

``reviews_Electronics_5.json.gz``
    JSON lines with the real fields and key order: ``reviewerID``, ``asin``,
    ``reviewerName`` (left out for a few users, as in the real file),
    ``helpful`` ``[a, b]``, ``reviewText``, ``overall``, ``summary``,
    ``unixReviewTime``, ``reviewTime`` (``"MM D, YYYY"``).
``meta_Electronics.json.gz``
    One Python dict literal per line, single-quoted like the real file (it is
    not JSON: readers must use ``ast.literal_eval``). ``categories`` is a list
    of paths; the item's category is the LAST entry of the FIRST path (the DIN
    protocol). Some items carry a second, generic path after it, and a few
    meta lines describe items nobody reviewed, as in the real file, so a
    reader that takes the wrong path or keeps unreviewed items shows up.
``SYNTHETIC.json``
    Generator, version, seed, parameters, counts and file checksums. Its
    presence marks the directory, and everything built from it, as synthetic.

WHY the lines are built with polars string expressions rather than
``json.dumps``/``repr``: 1.7M lines must be written in seconds. That is safe
because every string field comes from fixed vocabularies and generated codes
that contain no quote, backslash or control character (checked at import).

Determinism: lines are in a fixed order, text fields come from a random stream
derived from the seed (separate from the one that shapes the data), and gzip
members carry no file name and mtime 0. Compression runs on fixed-size chunks
(independent deflate streams joined at byte boundaries, like pigz), so the
bytes do not depend on the number of threads used.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from din_model.data.sources.synth.amazon import (
    SECONDS_PER_DAY,
    SYNTHETIC_MARKER,
    SynthAmazon,
    make_asins,
)
from din_model.errors import ConfigError
from din_model.io.output_dir import replace_output_dir

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
GZIP_LEVEL = 3  # deflate_fast: 2.5x faster than the default 6 for 15% larger files

FIRST_NAMES = (
    "John", "Mary", "David", "Linda", "Michael", "Susan", "James", "Karen", "Robert", "Lisa",
    "William", "Nancy", "Richard", "Betty", "Thomas", "Sandra", "Daniel", "Donna", "Paul",
    "Carol", "Mark", "Ruth", "Steven", "Sharon", "Kevin", "Laura", "Brian", "Amy", "Jason",
    "Emily", "Jeff", "Anna", "Ryan", "Kim", "Gary", "Jessica", "Eric", "Diane", "Scott", "Julie",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott", "Green",
)  # fmt: skip
OPENINGS = (
    "Works as described.", "Does the job.", "Great value for the money.", "Arrived quickly.",
    "Not what I expected.", "Stopped working after a month.", "Solid build quality.",
    "Easy to set up.", "Better than the original.", "Fits perfectly.", "Cheap but it works.",
    "Returned it.", "Exactly what I needed.", "Very happy with this purchase.",
)  # fmt: skip
DETAILS = (
    "The cable feels sturdy.", "Battery life is good.", "Sound is clear.",
    "The screen is bright.", "Setup took five minutes.", "The buttons feel cheap.",
    "Instructions were unclear.", "It gets warm after an hour.", "Works with my laptop.",
    "Would buy again.", "My son loves it.", "Shipping was fast.", "The case is a bit loose.",
)  # fmt: skip
SUMMARIES = {  # by rating bucket: 1-2, 3, 4-5
    0: ("Disappointed", "Broke quickly", "Do not buy", "Poor quality", "Waste of money"),
    1: ("OK", "Average", "It works", "Decent for the price", "Not bad"),
    2: ("Great product", "Five stars", "Love it", "Works great", "Highly recommend"),
}
GROUPS = (
    "Computers & Accessories", "Camera & Photo", "Car Electronics", "Portable Audio & Video",
    "Home Audio", "Accessories & Supplies", "Television & Video", "GPS & Navigation",
    "Headphones", "Cell Phones & Accessories", "Security & Surveillance", "Office Electronics",
    "Video Projectors", "eBook Readers & Accessories", "Marine Electronics", "Musical Instruments",
)  # fmt: skip
QUALIFIERS = (
    "Portable", "Wireless", "USB", "HDMI", "Bluetooth", "Car", "Digital", "Replacement",
    "Universal", "Laptop", "Camera", "Audio", "Video", "Gaming", "Outdoor", "Mini", "Smart",
    "Compact", "Rechargeable", "Professional", "Home", "Travel", "Desktop", "Waterproof",
    "Magnetic", "Optical", "Stereo", "Network", "Tablet", "Phone",
)  # fmt: skip
NOUNS = (
    "Cables", "Chargers", "Adapters", "Speakers", "Headsets", "Cases", "Mounts", "Batteries",
    "Lenses", "Filters", "Keyboards", "Mice", "Hubs", "Routers", "Antennas", "Receivers",
    "Amplifiers", "Microphones", "Stands", "Screen Protectors", "Memory Cards", "Hard Drives",
    "Monitors", "Remotes", "Tripods", "Flashes", "Docks", "Switches", "Power Strips", "Bags",
)  # fmt: skip
BRANDS = (
    "Sony", "Belkin", "AmazonBasics", "Logitech", "Anker", "Samsung", "Panasonic", "Canon",
    "Nikon", "Garmin", "Kingston", "SanDisk", "Philips", "JVC", "Pioneer", "Generic",
)  # fmt: skip
SECOND_PATH = ("Electronics", "Accessories & Supplies", "Other Accessories")
NAMELESS_SHARE = 0.05  # users whose reviews have no reviewerName, as in the real file
EXTRA_META_SHARE = 0.05  # meta lines for items nobody reviewed
SECOND_PATH_SHARE = 0.10


def _check_vocabulary() -> None:
    words: list[str] = [
        *FIRST_NAMES, *LAST_NAMES, *OPENINGS, *DETAILS, *GROUPS, *QUALIFIERS, *NOUNS, *BRANDS,
        *SECOND_PATH, *(s for group in SUMMARIES.values() for s in group),
    ]  # fmt: skip
    bad = [w for w in words if any(c in w for c in "'\"\\") or not w.isprintable()]
    if bad:
        raise AssertionError(f"vocabulary entries unsafe for unescaped literals: {bad}")


_check_vocabulary()


# --------------------------------------------------------------------------------------
# deterministic, chunk-parallel gzip


def _deflate(chunk: bytes, last: bool) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    return compressor.compress(chunk) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )


def write_gzip_chunks(path: Path, chunks: Iterable[bytes], threads: int | None = None) -> int:
    """Write ``chunks`` as ONE gzip member (no name, mtime 0); return the uncompressed size.

    Each chunk is deflated on its own and ends on a byte boundary (a full
    flush), so the chunks can be compressed in parallel threads (zlib releases
    the GIL) and still concatenate into one standard deflate stream that any
    gzip reader accepts. The result depends only on the chunks, not on
    ``threads``.
    """
    threads = threads or min(4, os.cpu_count() or 1)
    crc = 0
    size = 0
    header = (
        b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"
    )  # no FNAME, mtime 0, OS unknown
    with path.open("wb") as handle, ThreadPoolExecutor(max_workers=threads) as pool:
        handle.write(header)
        pending: list[Any] = []
        iterator = iter(chunks)
        current = next(iterator, None)
        while current is not None:
            following = next(iterator, None)
            crc = zlib.crc32(current, crc)
            size += len(current)
            pending.append(pool.submit(_deflate, current, following is None))
            while len(pending) > threads:  # bounded memory: keep only a few chunks in flight
                handle.write(pending.pop(0).result())
            current = following
        if size == 0:
            pending.append(pool.submit(_deflate, b"", True))
        for future in pending:
            handle.write(future.result())
        handle.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return size


def _lines_as_bytes(frame: pl.DataFrame, column: str) -> bytes:
    """The column's strings, one per line, as written (no CSV quoting: they are whole lines)."""
    buffer = io.BytesIO()
    frame.select(column).write_csv(buffer, include_header=False, quote_style="never")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# field values


def _pick(vocabulary: tuple[str, ...], index: np.ndarray) -> pl.Series:
    return pl.Series(vocabulary, dtype=pl.String).gather(pl.Series(index.astype(np.uint32)))


def _ratings(rng: np.random.Generator, count: int) -> np.ndarray:
    """Star ratings with the real Electronics mix (mostly 5 and 4 stars)."""
    return 1 + np.searchsorted(
        np.cumsum([0.07, 0.05, 0.09, 0.21, 0.58]), rng.random(count) * 0.99999
    )


def _reviewer_names(rng: np.random.Generator, users: int) -> pl.Series:
    """One display name per user (e.g. "Mary K. Smith", "Amazon Customer"); null for a few."""
    first = _pick(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), users))
    last = _pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), users))
    initial = pl.Series(list("ABCDEFGHJKLMNPRSTW")).gather(
        pl.Series(rng.integers(0, 18, users).astype(np.uint32))
    )
    style = rng.random(users)
    frame = pl.DataFrame({"first": first, "last": last, "initial": initial, "style": style})
    names = frame.select(
        pl.when(pl.col("style") < NAMELESS_SHARE)
        .then(None)
        .when(pl.col("style") < 0.15)
        .then(pl.lit("Amazon Customer"))
        .when(pl.col("style") < 0.5)
        .then(
            pl.concat_str(
                [pl.col("first"), pl.lit(" "), pl.col("initial"), pl.lit(". "), pl.col("last")]
            )
        )
        .otherwise(pl.concat_str([pl.col("first"), pl.lit(" "), pl.col("last")]))
        .alias("name")
    )
    return names.get_column("name")


def _review_frame(
    data: SynthAmazon, names: pl.Series, rng: np.random.Generator, start: int, stop: int
) -> pl.DataFrame:
    """Rows ``start:stop`` of the reviews file as one ``line`` column."""
    count = stop - start
    rating = _ratings(rng, count)
    votes = np.where(rng.random(count) < 0.55, 0, np.floor(rng.lognormal(0.7, 1.1, count))).astype(
        np.int64
    )
    helpful = rng.binomial(votes, 0.75)
    bucket = np.where(rating <= 2, 0, np.where(rating == 3, 1, 2))
    summary_pick = rng.integers(0, len(SUMMARIES[0]), count)
    summaries = tuple(s for b in range(3) for s in SUMMARIES[b])
    ts = data.event_day[start:stop].astype(np.int64) * SECONDS_PER_DAY
    frame = pl.DataFrame(
        {
            "reviewerID": pl.Series(data.user_ids[data.event_user[start:stop]], dtype=pl.String),
            "asin": pl.Series(data.item_asins[data.event_item[start:stop]], dtype=pl.String),
            "name": names.gather(pl.Series(data.event_user[start:stop].astype(np.uint32))),
            "a": helpful,
            "b": votes,
            "opening": _pick(OPENINGS, rng.integers(0, len(OPENINGS), count)),
            "detail": _pick(DETAILS, rng.integers(0, len(DETAILS), count)),
            "overall": rating.astype(np.float64),
            "summary": _pick(summaries, bucket * len(SUMMARIES[0]) + summary_pick),
            "ts": ts,
        }
    )
    date = pl.from_epoch(pl.col("ts"), time_unit="s").dt.date()
    name_part = (
        pl.when(pl.col("name").is_null())
        .then(pl.lit(""))
        .otherwise(pl.concat_str([pl.lit('"reviewerName": "'), pl.col("name"), pl.lit('", ')]))
    )
    line = pl.concat_str(
        [
            pl.lit('{"reviewerID": "'), pl.col("reviewerID"),
            pl.lit('", "asin": "'), pl.col("asin"), pl.lit('", '),
            name_part,
            pl.lit('"helpful": ['), pl.col("a").cast(pl.String),
            pl.lit(", "), pl.col("b").cast(pl.String),
            pl.lit('], "reviewText": "'), pl.col("opening"), pl.lit(" "), pl.col("detail"),
            pl.lit('", "overall": '), pl.col("overall").cast(pl.String),
            pl.lit(', "summary": "'), pl.col("summary"),
            pl.lit('", "unixReviewTime": '), pl.col("ts").cast(pl.String),
            pl.lit(', "reviewTime": "'), date.dt.strftime("%m %-d, %Y"), pl.lit('"}'),
        ]
    )  # fmt: skip
    return frame.select(line.alias("line"))


def _category_names(rng: np.random.Generator, categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique leaf names ("Wireless Chargers") and their group, per category index."""
    combos = np.array([f"{q} {n}" for q in QUALIFIERS for n in NOUNS])
    if categories > combos.size:
        raise ConfigError(f"at most {combos.size} categories have names, {categories} asked")
    leaves = combos[rng.permutation(combos.size)[:categories]]
    groups = np.array(GROUPS)[rng.integers(0, len(GROUPS), categories)]
    return leaves, groups


def _meta_frame(data: SynthAmazon, rng: np.random.Generator) -> pl.DataFrame:
    """Every reviewed item plus a few unreviewed ones, as Python-literal lines in asin order."""
    leaves, groups = _category_names(rng, int(data.category_start.size - 1))
    n_items = data.sizes.items
    extra = int(round(n_items * EXTRA_META_SHARE))
    extra_asins = make_asins(rng, extra + 8)  # same code space as the reviewed items
    extra_asins = extra_asins[~np.isin(extra_asins, data.item_asins)][:extra]
    extra = extra_asins.size
    category = np.concatenate([data.item_category, rng.integers(0, leaves.size, extra)]).astype(
        np.int64
    )
    total = n_items + extra
    # sales rank follows popularity for reviewed items (rank 1 = most popular)
    popularity = np.concatenate([data.item_popularity, np.zeros(extra)])
    rank = np.empty(total, dtype=np.int64)
    rank[np.argsort(-popularity, kind="stable")] = (
        1 + np.arange(total) * 7 + rng.integers(0, 7, total)
    )
    frame = pl.DataFrame(
        {
            "asin": pl.Series(np.concatenate([data.item_asins, extra_asins]), dtype=pl.String),
            "image": pl.Series(_image_codes(rng, total), dtype=pl.String),
            "rank": rank,
            "has_rank": rng.random(total) < 0.9,
            "group": pl.Series(groups[category], dtype=pl.String),
            "leaf": pl.Series(leaves[category], dtype=pl.String),
            "second": rng.random(total) < SECOND_PATH_SHARE,
            "brand": _pick(BRANDS, rng.integers(0, len(BRANDS), total)),
            "has_brand": rng.random(total) < 0.5,
            "model": rng.integers(100, 10_000, total),
            "price": np.round(np.exp(rng.normal(3.0, 1.0, total)), 2),
            "has_price": rng.random(total) < 0.7,
        }
    )
    second = " ".join(f"'{p}'," for p in SECOND_PATH).rstrip(",")
    line = pl.concat_str(
        [
            pl.lit("{'asin': '"), pl.col("asin"),
            pl.lit("', 'imUrl': 'http://ecx.images-amazon.com/images/I/"), pl.col("image"),
            pl.lit("._SY300_.jpg', "),
            _optional("has_rank", "'salesRank': {'Electronics': ", pl.col("rank"), "}, "),
            pl.lit("'categories': [['Electronics', '"), pl.col("group"),
            pl.lit("', '"), pl.col("leaf"), pl.lit("']"),
            pl.when(pl.col("second")).then(pl.lit(f", [{second}]")).otherwise(pl.lit("")),
            pl.lit("], 'title': '"), pl.col("brand"), pl.lit(" "), pl.col("leaf"), pl.lit(" "),
            pl.col("model").cast(pl.String), pl.lit("'"),
            _optional("has_price", ", 'price': ", pl.col("price")),
            _optional("has_brand", ", 'brand': '", pl.col("brand"), "'"),
            pl.lit("}"),
        ]
    )  # fmt: skip
    return frame.select(pl.col("asin"), line.alias("line")).sort("asin")


def _optional(flag: str, *parts: str | pl.Expr) -> pl.Expr:
    """The concatenated ``parts`` where column ``flag`` is true, else the empty string."""
    pieces = [pl.lit(p) if isinstance(p, str) else p.cast(pl.String) for p in parts]
    return pl.when(pl.col(flag)).then(pl.concat_str(pieces)).otherwise(pl.lit(""))


def _image_codes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Image ids like ``41aIFmZ2aGL``: 11 letters and digits (mixed case)."""
    alphabet = np.frombuffer(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
    )
    letters = alphabet[rng.integers(0, alphabet.size, (count, 11))]
    return np.ascontiguousarray(letters).view("S11").ravel().astype("U11")


# --------------------------------------------------------------------------------------
# the directory


def reviews_file_name(category: str) -> str:
    return f"reviews_{category}_5.json.gz"


def meta_file_name(category: str) -> str:
    return f"meta_{category}.json.gz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_amazon_2014_dir(
    data: SynthAmazon,
    out: str | Path,
    *,
    category: str = "Electronics",
    progress: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Write reviews, meta and ``SYNTHETIC.json`` into ``out`` atomically; return the description.

    ``out`` is replaced as a whole when everything is written. It must be new,
    empty, or an earlier output of din, replaced only with ``force``; any other
    non-empty folder is refused (:mod:`din_model.io.output_dir`). The
    description includes the counts and SHA-256 of each file.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    if not category or not category.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"--category must be a plain name like Electronics, got {category!r}")
    # Cosmetic fields use their own stream, so the data's shape never depends on them.
    rng = np.random.default_rng([data.seed, 2014])
    names = _reviewer_names(rng, data.sizes.users)
    started = time.perf_counter()
    reviews_name, meta_name = reviews_file_name(category), meta_file_name(category)
    total = data.event_user.size
    with replace_output_dir(out, command="synth", force=force) as tmp:
        bar = tqdm(
            total=total,
            desc=f"synth: {reviews_name}",
            unit="line",
            disable=not progress,
            leave=False,
        )

        def review_chunks() -> Iterator[bytes]:
            for start in range(0, total, CHUNK_ROWS):
                stop = min(start + CHUNK_ROWS, total)
                yield _lines_as_bytes(_review_frame(data, names, rng, start, stop), "line")
                bar.update(stop - start)

        review_bytes = write_gzip_chunks(tmp / reviews_name, review_chunks())
        bar.close()
        log.info("wrote %s (%d lines)", reviews_name, total)
        meta = _meta_frame(data, rng)
        meta_bytes = write_gzip_chunks(
            tmp / meta_name,
            (
                _lines_as_bytes(meta.slice(start, CHUNK_ROWS), "line")
                for start in range(0, meta.height, CHUNK_ROWS)
            ),
        )
        description = data.describe()
        description["category"] = category
        description["counts"]["meta_lines"] = meta.height
        description["files"] = {
            reviews_name: {
                "sha256": _sha256(tmp / reviews_name),
                "uncompressed_bytes": review_bytes,
            },
            meta_name: {"sha256": _sha256(tmp / meta_name), "uncompressed_bytes": meta_bytes},
        }
        description["note"] = (
            "Synthetic data generated by `din synth amazon`; not real reviews. "
            "Everything built from this directory is marked synthetic."
        )
        (tmp / SYNTHETIC_MARKER).write_text(
            json.dumps(description, indent=2, sort_keys=True) + "\n"
        )
    data.timings["write_s"] = time.perf_counter() - started
    log.info(
        "wrote %s: %d reviews, %d meta lines in %.1f s",
        out,
        total,
        meta.height,
        data.timings["write_s"],
    )
    return description

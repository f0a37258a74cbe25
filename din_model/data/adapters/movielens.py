"""MovieLens ratings (100K, 1M, 20M / latest) to the canonical tables.

Ratings are kept as they are (``rating``; the label rule "rating >= 4" belongs
to the sampling protocol) and ``behavior`` is null. An item's category is its
FIRST genre in the file's genre order; an item without genre (no flag set,
``(no genres listed)``) gets ``unknown``. User profiles (age, gender,
occupation, as String codes) exist in 100K and 1M only. Item and user files are
optional, with a warning: ratings alone still make a (poorer) data set.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import CanonicalData
from din_model.data.readers import (
    integer_ids_as_text,
    parse_floats,
    parse_integers,
    read_delimited,
    require_allowed,
    require_between,
    require_plausible_timestamps,
    require_values,
)
from din_model.data.readers.bad_lines import BadLinePolicy, BadLines
from din_model.errors import DataError

from ._sources import (
    ambiguous_files,
    file_or_broken_link,
    optional_file,
    require_directory,
    require_not_dangling,
)
from ._tables import (
    assemble_canonical,
    canonical_interactions,
    keep_first,
    require_rows,
)

logger = logging.getLogger(__name__)

ML_100K, ML_1M, ML_20M = "ml-100k", "ml-1m", "ml-20m"
LAYOUT_FILES = {
    ML_100K: "u.data (tab-separated user, item, rating, timestamp), u.item ('|'-separated, "
    "latin-1), u.user, u.genre",
    ML_1M: "ratings.dat, movies.dat, users.dat ('::'-separated)",
    ML_20M: "ratings.csv and movies.csv with headers (also ml-25m, ml-latest)",
}
_RATINGS_FILE = {ML_100K: "u.data", ML_1M: "ratings.dat", ML_20M: "ratings.csv"}
_RATING_NAMES = ["user_id", "item_id", "rating", "timestamp"]
# u.genre of ml-100k, used when that small file is absent
ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
PROFILE_COLUMNS = ["age", "gender", "occupation"]
# MovieLens scale: 1-5 stars in 100K and 1M, half stars from 0.5 in 20M / latest
RATING_RANGE = (0.5, 5.0)


def detect(source: Path) -> str | None:
    require_directory(source, "MovieLens")
    found = [layout for layout, name in _RATINGS_FILE.items() if file_or_broken_link(source / name)]
    if len(found) > 1:
        names = [_RATINGS_FILE[layout] for layout in found]
        raise ambiguous_files(
            source, "MovieLens ratings file", names, "keep one release per directory"
        )
    if not found:
        return None
    require_not_dangling(source / _RATINGS_FILE[found[0]], "a readable ratings file")
    return found[0]


def read(source: Path, layout: str, policy: BadLinePolicy) -> CanonicalData:
    readers = {ML_100K: _read_100k, ML_1M: _read_1m, ML_20M: _read_20m}
    ratings_path = source / _RATINGS_FILE[layout]
    interactions = read_ratings(ratings_path, layout, policy.for_file(ratings_path))
    source_files = [ratings_path]
    report: dict[str, object] = {}
    metadata, profiles = readers[layout](source, policy, source_files, report)
    return assemble_canonical(
        "movielens",
        layout,
        interactions,
        metadata=metadata,
        profiles=profiles,
        source_files=source_files,
        report=report,
    )


def read_ratings(path: Path, layout: str, bad: BadLines) -> pl.DataFrame:
    """Canonical interactions (``line`` included) of the valid lines of a ratings file."""
    if layout == ML_20M:
        frame = read_delimited(
            path,
            separator=",",
            header=True,
            required=["userId", "movieId", "rating", "timestamp"],
            bad=bad,
        ).rename({"userId": "user_id", "movieId": "item_id"})
    else:
        separator = "\t" if layout == ML_100K else "::"
        frame = read_delimited(path, separator=separator, names=_RATING_NAMES, bad=bad)
    frame = require_values(frame, _RATING_NAMES, bad)
    frame = integer_ids_as_text(frame, ["user_id", "item_id"], bad)
    frame = parse_floats(frame, "rating", bad, expected="a numeric rating")
    low, high = RATING_RANGE
    frame = require_between(
        frame, "rating", bad, low=low, high=high, expected=f"a rating from {low:g} to {high:g}"
    )
    frame = parse_integers(frame, "timestamp", bad, expected="an integer unix timestamp")
    frame = require_plausible_timestamps(frame, "timestamp", bad)
    require_rows(frame, path, "rating")
    logger.info("%s: %d ratings", path.name, frame.height)
    return canonical_interactions(frame)


def _read_100k(
    source: Path, policy: BadLinePolicy, source_files: list[Path], report: dict[str, object]
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    metadata = profiles = None
    item_path = source / "u.item"
    if optional_file(
        item_path, "every movie gets the category 'unknown'", report, "metadata_missing"
    ):
        genres = _read_100k_genres(source / "u.genre", policy, source_files)
        metadata = _read_100k_items(item_path, genres, policy)
        source_files.append(item_path)
    user_path = source / "u.user"
    if optional_file(user_path, "users have no profile", report, "profiles_missing"):
        names = ["user_id", "age", "gender", "occupation", "zip_code"]
        profiles = _read_profiles(user_path, "|", names, policy)
        source_files.append(user_path)
    return metadata, profiles


def _read_profiles(
    path: Path, separator: str, names: list[str], policy: BadLinePolicy
) -> pl.DataFrame:
    """``u.user`` / ``users.dat``: the first line of each user, profile columns only."""
    bad = policy.for_file(path)
    frame = read_delimited(path, separator=separator, names=names, bad=bad)
    frame = require_values(frame, ["user_id"], bad)
    frame = integer_ids_as_text(frame, ["user_id"], bad)
    profiles, _ = keep_first(frame, "user_id")
    return profiles.select("user_id", *PROFILE_COLUMNS)


def _read_100k_genres(path: Path, policy: BadLinePolicy, source_files: list[Path]) -> list[str]:
    """Genre names in flag order, from ``u.genre`` (``name|index``) when present."""
    require_not_dangling(path)
    if not path.is_file():
        logger.warning("%s is missing: using the standard 19 MovieLens 100K genres", path)
        return list(ML_100K_GENRES)
    bad = policy.for_file(path)
    frame = read_delimited(path, separator="|", names=["genre", "index"], bad=bad)
    frame = require_values(frame, ["genre", "index"], bad)
    frame = parse_integers(frame, "index", bad, expected="an integer genre index")
    indices = frame["index"].to_list()
    if sorted(indices) != list(range(len(indices))):
        raise DataError(path, f"genre indices 0..{len(indices) - 1}, each once", got=str(indices))
    source_files.append(path)
    return frame.sort("index")["genre"].to_list()


def _read_100k_items(path: Path, genres: list[str], policy: BadLinePolicy) -> pl.DataFrame:
    bad = policy.for_file(path)
    flags = [f"genre_{i}" for i in range(len(genres))]
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *flags]
    frame = read_delimited(path, separator="|", names=names, encoding="latin-1", bad=bad)
    frame = require_values(frame, ["item_id", *flags], bad)
    frame = integer_ids_as_text(frame, ["item_id"], bad)
    for flag in flags:
        frame = require_allowed(frame, flag, {"0", "1"}, bad)
    marked = [
        pl.when(pl.col(flag) == "1").then(pl.lit(genre))
        for flag, genre in zip(flags, genres, strict=True)
    ]
    frame = frame.with_columns(
        pl.coalesce(marked).alias("category"),
        pl.concat_list(marked).list.drop_nulls().list.join("|").alias("genres"),
    )
    first, _ = keep_first(frame, "item_id")
    return first.select("item_id", "category", "title", "genres")


def _read_1m(
    source: Path, policy: BadLinePolicy, source_files: list[Path], report: dict[str, object]
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    metadata = profiles = None
    movies_path = source / "movies.dat"
    if optional_file(
        movies_path, "every movie gets the category 'unknown'", report, "metadata_missing"
    ):
        bad = policy.for_file(movies_path)
        frame = read_delimited(
            movies_path,
            separator="::",
            names=["item_id", "title", "genres"],
            encoding="latin-1",
            bad=bad,
        )
        metadata = _movies_with_first_genre(frame, bad)
        source_files.append(movies_path)
    users_path = source / "users.dat"
    if optional_file(users_path, "users have no profile", report, "profiles_missing"):
        names = ["user_id", "gender", "age", "occupation", "zip_code"]
        profiles = _read_profiles(users_path, "::", names, policy)
        source_files.append(users_path)
    return metadata, profiles


def _read_20m(
    source: Path, policy: BadLinePolicy, source_files: list[Path], report: dict[str, object]
) -> tuple[pl.DataFrame | None, None]:
    movies_path = source / "movies.csv"
    if not optional_file(
        movies_path, "every movie gets the category 'unknown'", report, "metadata_missing"
    ):
        return None, None
    bad = policy.for_file(movies_path)
    frame = read_delimited(
        movies_path,
        separator=",",
        header=True,
        required=["movieId", "title", "genres"],
        quote_char='"',
        bad=bad,
    ).rename({"movieId": "item_id"})
    source_files.append(movies_path)
    return _movies_with_first_genre(frame, bad), None


def _movies_with_first_genre(frame: pl.DataFrame, bad: BadLines) -> pl.DataFrame:
    """Items with ``category`` = first of the ``|``-separated genres (null when none listed)."""
    frame = require_values(frame, ["item_id"], bad)
    frame = integer_ids_as_text(frame, ["item_id"], bad)
    genres = pl.when(pl.col("genres") != NO_GENRES).then(pl.col("genres"))
    frame = frame.with_columns(
        genres.alias("genres"), genres.str.split("|").list.first().alias("category")
    )
    first, _ = keep_first(frame, "item_id")
    return first.select("item_id", "category", "title", "genres")

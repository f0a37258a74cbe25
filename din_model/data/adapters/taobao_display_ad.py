"""Taobao display-ad click data (Tianchi data set 56) to the canonical tables.

Files, each with a header (the real ``user_profile.csv`` header carries a
trailing space, so names are stripped):

* ``raw_sample.csv``: user, time_stamp, adgroup_id, pid, nonclk, clk -> the
  interactions are the ad impressions: ``item_id`` = adgroup_id, ``label`` =
  clk, ``behavior`` = "impression", plus the context column ``pid``; every row
  must have nonclk + clk = 1;
* ``ad_feature.csv``: adgroup_id, cate_id, campaign_id, customer, brand, price
  -> items (category = cate_id; brand "NULL" means none);
* ``user_profile.csv`` -> users (all profile fields as String, empty = null);
* ``behavior_log.csv``: user, time_stamp, btag, cate, brand -> the
  ``behaviors`` table (behaviour = btag, plus ``line``), the source of DIN
  histories here.

``raw_sample.csv`` and ``ad_feature.csv`` are required; a missing profile or
behaviour log is allowed with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import BEHAVIOR_COLUMNS, CanonicalData
from din_model.data.readers import (
    integer_ids_as_text,
    parse_floats,
    parse_integers,
    read_delimited,
    require_allowed,
    require_plausible_timestamps,
    require_values,
)
from din_model.data.readers.bad_lines import BadLinePolicy, BadLines
from din_model.errors import DataError

from ._sources import file_or_broken_link, optional_file, require_not_dangling
from ._tables import (
    assemble_canonical,
    canonical_interactions,
    keep_first,
    require_rows,
)

logger = logging.getLogger(__name__)

DISPLAY_AD = "taobao-display-ad"
RAW_SAMPLE = "raw_sample.csv"
AD_FEATURE = "ad_feature.csv"
USER_PROFILE = "user_profile.csv"
BEHAVIOR_LOG = "behavior_log.csv"
EXPECTED_FILES = (
    f"{RAW_SAMPLE} and {AD_FEATURE}, with optional {USER_PROFILE} and {BEHAVIOR_LOG} (headers)"
)
RAW_SAMPLE_COLUMNS = ["user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"]
AD_FEATURE_COLUMNS = ["adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"]
PROFILE_COLUMNS = [
    "cms_segid",
    "cms_group_id",
    "final_gender_code",
    "age_level",
    "pvalue_level",
    "shopping_level",
    "occupation",
    "new_user_class_level",
]
BEHAVIOR_LOG_COLUMNS = ["user", "time_stamp", "btag", "cate", "brand"]
BTAGS = frozenset({"pv", "cart", "fav", "buy"})
_NULL_TEXT = "NULL"


def detect(source: Path) -> bool:
    return file_or_broken_link(source / RAW_SAMPLE)


def read(source: Path, policy: BadLinePolicy) -> CanonicalData:
    raw_path = source / RAW_SAMPLE
    ad_path = source / AD_FEATURE
    require_not_dangling(raw_path, "a readable impressions file")
    require_not_dangling(ad_path, f"the ad features file next to {RAW_SAMPLE}")
    if not ad_path.is_file():
        raise DataError(ad_path, f"the ad features file next to {RAW_SAMPLE}", got="no such file")
    interactions = _read_impressions(raw_path, policy.for_file(raw_path))
    metadata, duplicate_ads = _read_ad_features(ad_path, policy.for_file(ad_path))
    source_files = [raw_path, ad_path]
    report: dict[str, object] = {"ad_feature_duplicates": duplicate_ads}
    profiles = None
    profile_path = source / USER_PROFILE
    if optional_file(profile_path, "users have no profile", report, "profiles_missing"):
        profiles = _read_profiles(profile_path, policy.for_file(profile_path))
        source_files.append(profile_path)
    behaviors = None
    log_path = source / BEHAVIOR_LOG
    no_history = "no behaviour histories beyond the impressions"
    if optional_file(log_path, no_history, report, "behavior_log_missing"):
        behaviors = _read_behavior_log(log_path, policy.for_file(log_path))
        source_files.append(log_path)
        report["behaviors"] = behaviors.height
    report["clicks"] = int(interactions["label"].sum())
    return assemble_canonical(
        "taobao",
        DISPLAY_AD,
        interactions,
        metadata=metadata,
        profiles=profiles,
        source_files=source_files,
        report=report,
        behaviors=behaviors,
    )


def _read_impressions(path: Path, bad: BadLines) -> pl.DataFrame:
    frame = read_delimited(path, separator=",", header=True, required=RAW_SAMPLE_COLUMNS, bad=bad)
    frame = require_values(frame, RAW_SAMPLE_COLUMNS, bad)
    frame = integer_ids_as_text(frame, ["user", "adgroup_id"], bad)
    frame = parse_integers(frame, "time_stamp", bad, expected="an integer unix timestamp")
    frame = require_plausible_timestamps(frame, "time_stamp", bad)
    for flag in ("nonclk", "clk"):
        frame = require_allowed(frame, flag, {"0", "1"}, bad)
    frame = bad.reject(
        frame,
        pl.col("nonclk").cast(pl.Int8) + pl.col("clk").cast(pl.Int8) != 1,
        expected="exactly one of nonclk and clk set to 1",
        column="clk",
        got=pl.concat_str(pl.lit("nonclk="), "nonclk", pl.lit(", clk="), "clk"),
    )
    require_rows(frame, path, "impression")
    return canonical_interactions(
        frame.select(
            pl.col("user").alias("user_id"),
            pl.col("adgroup_id").alias("item_id"),
            pl.col("time_stamp").alias("timestamp"),
            pl.lit("impression").alias("behavior"),
            pl.col("clk").cast(pl.Int8).alias("label"),
            pl.col("line"),
            pl.col("pid").cast(pl.String),
        ),
        extra=["pid"],
    )


def _null_text(column: str) -> pl.Expr:
    return pl.when(pl.col(column) != _NULL_TEXT).then(pl.col(column)).alias(column)


def _read_ad_features(path: Path, bad: BadLines) -> tuple[pl.DataFrame, int]:
    frame = read_delimited(path, separator=",", header=True, required=AD_FEATURE_COLUMNS, bad=bad)
    frame = require_values(frame, ["adgroup_id"], bad)
    frame = integer_ids_as_text(frame, ["adgroup_id"], bad)
    frame = frame.with_columns(_null_text("brand"), _null_text("cate_id"))
    frame = parse_floats(frame, "price", bad, expected="a numeric price")
    first, duplicates = keep_first(frame, "adgroup_id")
    items = first.select(
        pl.col("adgroup_id").alias("item_id"),
        pl.col("cate_id").alias("category"),
        "brand",
        "campaign_id",
        "customer",
        "price",
    )
    return items, duplicates


def _read_profiles(path: Path, bad: BadLines) -> pl.DataFrame:
    frame = read_delimited(
        path, separator=",", header=True, required=["userid", *PROFILE_COLUMNS], bad=bad
    )
    frame = require_values(frame, ["userid"], bad)
    frame = integer_ids_as_text(frame, ["userid"], bad)
    first, duplicates = keep_first(frame, "userid")
    if duplicates:
        logger.warning("%s: %d duplicate users, first profile kept", path.name, duplicates)
    return first.select(pl.col("userid").alias("user_id"), *PROFILE_COLUMNS)


def _read_behavior_log(path: Path, bad: BadLines) -> pl.DataFrame:
    frame = read_delimited(path, separator=",", header=True, required=BEHAVIOR_LOG_COLUMNS, bad=bad)
    frame = require_values(frame, ["user", "time_stamp", "btag"], bad)
    frame = integer_ids_as_text(frame, ["user"], bad)
    frame = parse_integers(frame, "time_stamp", bad, expected="an integer unix timestamp")
    frame = require_plausible_timestamps(frame, "time_stamp", bad)
    frame = require_allowed(frame, "btag", BTAGS, bad)
    frame = frame.with_columns(_null_text("brand"), _null_text("cate"))
    require_rows(frame, path, "behaviour")
    return frame.select(
        pl.col("user").alias("user_id"),
        pl.col("time_stamp").alias("timestamp"),
        pl.col("btag").alias("behavior"),
        pl.col("cate").alias("category"),
        pl.col("brand"),
        pl.col("line"),  # the stable tie-breaker, as in interactions
    ).cast(BEHAVIOR_COLUMNS)

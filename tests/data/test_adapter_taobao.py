"""Taobao adapters: the real UserBehavior head; display-ad fixtures from the published schema."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from _raw_files import write_lines

from din_model.data.adapters import ingest
from din_model.data.canonical.schema import BEHAVIOR_COLUMNS, INTERACTION_COLUMNS, missing_columns
from din_model.errors import DataError


def test_user_behavior_head_figures(taobao_user_behavior: Path) -> None:
    data = ingest("taobao", taobao_user_behavior)
    assert data.layout == "taobao-user-behavior"
    assert data.interactions.height == 84_475
    assert data.users.height == 815
    assert data.items.height == 55_368
    assert data.items["category"].n_unique() == 2_914
    assert missing_columns(data.interactions, INTERACTION_COLUMNS) == []
    assert set(data.interactions["behavior"]) == {"pv", "cart", "fav", "buy"}
    assert sum(data.report["behavior_counts"].values()) == 84_475
    assert data.interactions["line"].to_list() == list(range(84_475))
    assert data.behaviors is None


def test_item_category_is_the_most_frequent_then_smallest(tmp_path: Path) -> None:
    rows = [
        "1,100,5,pv,1511544070",
        "1,100,3,pv,1511544071",
        "2,100,5,buy,1511544072",
        "2,200,7,pv,1511544073",
        "1,200,30,cart,1511544074",
        "1,300,9,fav,1511544075",
        "1,300,9,fav,1511544075",  # an exact copy of a line: dropped
        "1,300,9,pv,1511544075",  # the same second, another behaviour: kept
    ]
    write_lines(tmp_path / "UserBehavior.csv", rows)
    data = ingest("taobao", tmp_path)
    assert dict(data.items.iter_rows()) == {"100": "5", "200": "7", "300": "9"}
    assert data.report["items_with_conflicting_categories"] == 2
    assert data.interactions.height == 7
    assert data.report["duplicates_dropped"] == {"interactions": 1}


def _write_display_ad(folder: Path, raw_rows: list[str] | None = None) -> Path:
    raw = raw_rows or [
        "581738,1494137644,1,430548_1007,1,0",
        "449818,1494638778,3,430548_1007,1,0",
        "581738,1494652127,2,430539_1007,0,1",
        "914836,1494650879,4,430548_1007,1,0",
    ]
    write_lines(folder / "raw_sample.csv", ["user,time_stamp,adgroup_id,pid,nonclk,clk", *raw])
    write_lines(
        folder / "ad_feature.csv",
        [
            "adgroup_id,cate_id,campaign_id,customer,brand,price",
            "1,6406,83237,1,95471,170.0",
            "2,1489,111262,2,NULL,199.0",
            "3,1489,10000,3,1000,0.01",
        ],
    )
    write_lines(
        folder / "user_profile.csv",
        [
            "userid,cms_segid,cms_group_id,final_gender_code,age_level,pvalue_level,"
            "shopping_level,occupation,new_user_class_level ",
            "581738,0,8,2,2,,3,0,3",
            "449818,5,3,2,3,1,3,0,",
        ],
    )
    write_lines(
        folder / "behavior_log.csv",
        [
            "user,time_stamp,btag,cate,brand",
            "581738,1494137000,pv,6406,95471",
            "581738,1494137001,cart,1489,NULL",
            "449818,1494137002,buy,1489,1000",
        ],
    )
    return folder


def test_display_ad_tables(tmp_path: Path) -> None:
    data = ingest("taobao", _write_display_ad(tmp_path / "ad"))
    assert data.layout == "taobao-display-ad"
    interactions = data.interactions
    assert interactions.columns == [*INTERACTION_COLUMNS, "pid"]
    assert interactions.select("user_id", "item_id", "label", "pid").rows() == [
        ("581738", "1", 0, "430548_1007"),
        ("449818", "3", 0, "430548_1007"),
        ("581738", "2", 1, "430539_1007"),
        ("914836", "4", 0, "430548_1007"),
    ]
    assert interactions["label"].dtype == pl.Int8
    assert set(interactions["behavior"]) == {"impression"}
    items = {row["item_id"]: row for row in data.items.iter_rows(named=True)}
    assert items["2"]["category"] == "1489" and items["2"]["brand"] is None
    assert items["1"]["price"] == 170.0
    assert items["4"]["category"] == "unknown"  # adgroup without ad features
    assert data.report["items_unknown_category_reasons"]["no_metadata"] == 1
    profile = data.users.filter(pl.col("user_id") == "581738").row(0, named=True)
    assert profile["pvalue_level"] is None and profile["new_user_class_level"] == "3"
    assert data.report["users_without_profile"] == 1
    assert missing_columns(data.behaviors, BEHAVIOR_COLUMNS) == []
    assert data.behaviors.select("user_id", "behavior", "category", "brand").rows() == [
        ("581738", "pv", "6406", "95471"),
        ("581738", "cart", "1489", None),
        ("449818", "buy", "1489", "1000"),
    ]
    assert data.report["clicks"] == 1


def test_display_ad_click_flags_must_be_complementary(tmp_path: Path) -> None:
    folder = _write_display_ad(
        tmp_path / "ad", ["1,1494137644,1,430548_1007,1,0", "2,1494137645,1,430548_1007,1,1"]
    )
    with pytest.raises(
        DataError, match=r"raw_sample\.csv:3: column 'clk': expected exactly one of nonclk and clk"
    ):
        ingest("taobao", folder)
    data = ingest("taobao", folder, on_bad_lines="skip", rejects_dir=tmp_path / "rejects")
    assert data.interactions.height == 1
    assert data.report["rejected_lines_by_file"]["raw_sample.csv"] == 1


def test_user_behavior_and_display_ad_together_are_ambiguous(tmp_path: Path) -> None:
    folder = _write_display_ad(tmp_path / "both")
    write_lines(folder / "UserBehavior.csv", ["1,100,5,pv,1511544070"])
    with pytest.raises(DataError, match=r"exactly one Taobao data set, found 2"):
        ingest("taobao", folder)

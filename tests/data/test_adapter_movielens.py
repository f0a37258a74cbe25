"""MovieLens adapter: the real 100K files, and 1M / 20M fixtures in the owners' formats."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from _raw_files import write_lines

from din_model.data.adapters import ingest
from din_model.data.canonical.schema import INTERACTION_COLUMNS, UNKNOWN_CATEGORY, missing_columns


@pytest.fixture(scope="module")
def ml100k(movielens_100k: Path):
    return ingest("movielens", movielens_100k)


def test_100k_figures(ml100k) -> None:
    assert ml100k.layout == "ml-100k"
    assert ml100k.interactions.height == 100_000
    assert ml100k.users.height == 943
    assert ml100k.items.height == 1_682
    assert missing_columns(ml100k.interactions, INTERACTION_COLUMNS) == []
    assert ml100k.interactions["line"].to_list() == list(range(100_000))
    assert ml100k.interactions["behavior"].null_count() == 100_000
    assert ml100k.interactions["label"].null_count() == 100_000
    assert set(ml100k.interactions["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml100k.report["rejected_lines"] == 0


def test_100k_profiles(ml100k, movielens_100k: Path) -> None:
    users = ml100k.users
    assert users.columns == ["user_id", "age", "gender", "occupation"]
    assert users.null_count().row(0) == (0, 0, 0, 0)
    assert set(users["gender"]) == {"M", "F"}
    first = (movielens_100k / "u.user").read_text().splitlines()[0].split("|")
    assert users.filter(pl.col("user_id") == first[0]).row(0) == tuple(first[:4])


def test_100k_category_is_first_flagged_genre(ml100k, movielens_100k: Path) -> None:
    genres = [
        line.split("|")[0] for line in (movielens_100k / "u.genre").read_text().splitlines() if line
    ]
    expected = {}
    for line in (movielens_100k / "u.item").read_bytes().decode("latin-1").splitlines():
        fields = line.split("|")
        flags = fields[5:]
        expected[fields[0]] = next(
            (genre for genre, flag in zip(genres, flags, strict=True) if flag == "1"),
            UNKNOWN_CATEGORY,
        )
    assert dict(ml100k.items.select("item_id", "category").iter_rows()) == expected
    toy_story = ml100k.items.filter(pl.col("item_id") == "1").row(0, named=True)
    assert toy_story["category"] == "Animation"
    assert toy_story["genres"] == "Animation|Children's|Comedy"
    # the genre literally named "unknown" lands in the reserved category, and is counted
    assert ml100k.report["items_unknown_category_reasons"]["labelled_unknown"] == 2


def _write_1m(folder: Path) -> Path:
    write_lines(folder / "ratings.dat", ["1::10::5::978300760", "1::20::3::978302109",
                                         "2::10::4::978301968"])  # fmt: skip
    write_lines(
        folder / "movies.dat",
        ["10::Amélie (2001)::Comedy|Romance", "20::Star Wars: Episode IV (1977)::Action|Sci-Fi"],
        encoding="latin-1",
    )
    write_lines(folder / "users.dat", ["1::F::1::10::48067", "2::M::56::16::70072"])
    return folder


def test_1m_layout(tmp_path: Path) -> None:
    data = ingest("movielens", _write_1m(tmp_path / "ml-1m"))
    assert data.layout == "ml-1m"
    assert data.interactions.select("user_id", "item_id", "rating", "timestamp").rows() == [
        ("1", "10", 5.0, 978300760),
        ("1", "20", 3.0, 978302109),
        ("2", "10", 4.0, 978301968),
    ]
    assert data.items.select("item_id", "category", "title").rows() == [
        ("10", "Comedy", "Amélie (2001)"),
        ("20", "Action", "Star Wars: Episode IV (1977)"),
    ]
    assert data.users.rows() == [("1", "1", "F", "10"), ("2", "56", "M", "16")]
    assert data.users.columns == ["user_id", "age", "gender", "occupation"]


def test_20m_layout_with_quoted_titles_and_no_genres(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    write_lines(
        folder / "ratings.csv",
        ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,11,2.5,964981247",
         "2,193609,0.5,1537157606"],
    )  # fmt: skip
    write_lines(
        folder / "movies.csv",
        [
            "movieId,title,genres",
            "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
            '11,"American President, The (1995)",Comedy|Drama|Romance',
            "193609,Andrew Dice Clay: Dice Rules (1991),(no genres listed)",
        ],
    )
    write_lines(folder / "links.csv", ["movieId,imdbId,tmdbId"])
    data = ingest("movielens", folder)
    assert data.layout == "ml-20m"
    assert data.items.select("item_id", "category", "title").rows() == [
        ("1", "Adventure", "Toy Story (1995)"),
        ("11", "Comedy", "American President, The (1995)"),
        ("193609", UNKNOWN_CATEGORY, "Andrew Dice Clay: Dice Rules (1991)"),
    ]
    assert data.report["items_unknown_category_reasons"]["empty_category"] == 1
    assert data.interactions["rating"].to_list() == [4.0, 2.5, 0.5]
    assert data.interactions["line"].to_list() == [1, 2, 3]
    assert data.users.columns == ["user_id"]
    assert data.report["profile_columns"] == []


def test_missing_item_file_is_a_warning_not_an_error(tmp_path: Path) -> None:
    folder = _write_1m(tmp_path / "ml-1m")
    (folder / "movies.dat").unlink()
    data = ingest("movielens", folder)
    assert data.report["metadata_missing"] is True
    assert set(data.items["category"]) == {UNKNOWN_CATEGORY}

"""Fast checks of the pure parts of the pipeline: input padding of the served model, the
ablation table, the grid, the rerun data check, config flattening and store paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_comparison_table_mean_spread_and_relaimpr_per_seed() -> None:
    from tasks.comparison import CellResult, comparison_markdown, comparison_table

    results = [
        CellResult("base", "none", 1, 0.70, 0.60, 0.60),
        CellResult("din", "none", 1, 0.72, 0.65, 0.58),
        CellResult("base", "none", 2, 0.71, 0.70, 0.60),
        CellResult("din", "none", 2, 0.73, 0.74, 0.57),
        CellResult("din", "mba", 1, 0.74, 0.66, 0.56),
    ]
    table = comparison_table(results)
    rows = {row["cell"]: row for row in table.iter_rows(named=True)}
    assert list(rows) == ["base", "din", "din+mba"]
    din = rows["din"]
    assert din["seeds"] == 2
    assert din["gauc_mean"] == pytest.approx(0.695)
    assert din["gauc_std"] == pytest.approx(np.std([0.65, 0.74], ddof=1))
    per_seed = [(0.65 - 0.5) / (0.60 - 0.5) * 100 - 100, (0.74 - 0.5) / (0.70 - 0.5) * 100 - 100]
    assert din["relaimpr_mean"] == pytest.approx(np.mean(per_seed))
    assert rows["base"]["relaimpr_mean"] == pytest.approx(0.0)
    assert rows["din+mba"]["logloss_std"] == 0.0
    markdown = comparison_markdown(table)
    assert "| din | mba | 1 | 0.7400 ± n/a |" in markdown  # one seed: no spread


def test_comparison_without_base_model_has_no_relaimpr() -> None:
    from tasks.comparison import CellResult, comparison_markdown, comparison_table

    table = comparison_table([CellResult("din", "none", 1, 0.7, 0.7, 0.6)])
    assert table["relaimpr_mean"].to_list() == [None]
    assert "n/a" in comparison_markdown(table)


def test_default_ablation_grid_is_the_papers_comparison() -> None:
    from flows.ablation_flow import PAPER_MODELS, PAPER_REGULARIZERS, grid_cells

    cells = grid_cells(list(PAPER_MODELS), list(PAPER_REGULARIZERS), False, "din")
    assert cells[:7] == [(m, "none") for m in PAPER_MODELS]
    assert cells[7:] == [("din", r) for r in ("dropout", "filter", "difacto", "mba")]
    crossed = grid_cells(["base", "din"], ["none", "l2"], True, "din")
    assert crossed == [("base", "none"), ("base", "l2"), ("din", "none"), ("din", "l2")]


def test_manifest_differences_name_each_file(tmp_path: Path) -> None:
    from din_model.io.fingerprint import file_manifest, manifest_fingerprint
    from tasks.reproduce import manifest_differences

    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    before = file_manifest(tmp_path)
    (tmp_path / "a.txt").write_text("ONE!")
    (tmp_path / "b.txt").unlink()
    (tmp_path / "c.txt").write_text("new")
    after = file_manifest(tmp_path)
    assert manifest_fingerprint(before) != manifest_fingerprint(after)
    lines = manifest_differences(before, after)
    assert lines[0].startswith("changed: a.txt (size 3 -> 4")
    assert lines[1:] == ["missing: b.txt", "new file: c.txt"]


def test_config_flattening_for_mlflow_params() -> None:
    from tasks.tracking import flatten_config

    flat = flatten_config(
        {"model": {"mlp_hidden": [200, 80], "embedding_dims": {}, "x": None, "flag": True}}
    )
    assert flat == {
        "model.mlp_hidden": "[200, 80]",
        "model.embedding_dims": "{}",
        "model.x": "null",
        "model.flag": "true",
    }


def test_sqlite_store_paths() -> None:
    from tasks.store import artifact_root, sqlite_path

    assert sqlite_path("sqlite:////tmp/store/mlflow.db") == Path("/tmp/store/mlflow.db")
    assert sqlite_path("sqlite:///rel/mlflow.db") == Path.cwd() / "rel" / "mlflow.db"
    assert sqlite_path("http://127.0.0.1:5000") is None
    assert artifact_root("sqlite:////tmp/store/mlflow.db") == Path("/tmp/store/artifacts")
    assert artifact_root("http://127.0.0.1:5000") is None


def test_attention_plot_draws_one_panel_per_example(tmp_path: Path) -> None:
    from din_model.pipeline.attention_examples import AttentionExample
    from tasks.plots import attention_plot

    examples = [
        AttentionExample(
            row=i,
            user_id=10 + i,
            label=1,
            score=0.7,
            candidate={"item_id": 5, "cate_id": 2},
            history={"hist_item_id": [3, 4, 6], "hist_cate_id": [2, 1, 2]},
            targets={"hist_item_id": "item_id", "hist_cate_id": "cate_id"},
            weights=[0.9, 0.1, 0.5],
        )
        for i in range(2)
    ]
    assert examples[0].same_as_candidate("hist_cate_id") == [True, False, True]
    path = attention_plot(examples, tmp_path / "attention.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one example"):
        attention_plot([], tmp_path / "none.png")


def test_attention_figure_shares_one_scale_and_says_the_weights_are_unnormalised() -> None:
    import matplotlib.pyplot as plt

    from din_model.pipeline.attention_examples import AttentionExample
    from tasks.plots import attention_figure

    def example(user: int, weights: list[float], softmax: bool = False) -> AttentionExample:
        return AttentionExample(
            row=user,
            user_id=user,
            label=1,
            score=0.6,
            candidate={"item_id": 5, "cate_id": 2},
            history={"hist_item_id": [3, 4, 6], "hist_cate_id": [2, 1, 2]},
            targets={"hist_item_id": "item_id", "hist_cate_id": "cate_id"},
            weights=weights,
            softmax=softmax,
        )

    fig = attention_figure(
        [example(1, [0.2, 0.1, 0.3]), example(2, [2.5, -0.4, 1.0])],
        names={2: "Sci-Fi"},
        users={1: "A1", 2: "B2"},
    )
    top, bottom = fig.axes
    assert top.get_ylim() == bottom.get_ylim()  # one scale: the small weights look small
    low, high = top.get_ylim()
    assert low < -0.4 and high > 2.5
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "not normalised" in caption and "need not sum to 1" in caption
    assert "user A1 (1)" in top.get_title() and "'Sci-Fi'" in top.get_title()
    assert "weights sum to 3.1" in bottom.get_title()
    plt.close(fig)

    fig = attention_figure([example(1, [0.5, 0.2, 0.3], softmax=True)])
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "softmax" in caption and "sums to 1" in caption and "not normalised" not in caption
    plt.close(fig)

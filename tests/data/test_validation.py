"""Great Expectations steps: suites from JSON, parameters, readable failures."""

from __future__ import annotations

import json

import polars as pl
import pytest
from _protocol_frames import canonical

from din_model.data.encoding.coded import code_canonical
from din_model.data.protocols import run_protocol
from din_model.data.samples.build import assemble
from din_model.data.specs.feature_map import FeatureMap, TableSpec
from din_model.data.specs.spec import load_spec, spec_for_layout
from din_model.errors import ConfigError, ValidationFailed
from din_model.pipeline.prepare import build_samples, validate_canonical, validate_samples
from din_model.registry import spec_families
from din_model.validation.runner import run_suite
from din_model.validation.samples import sample_parameters
from din_model.validation.suites import (
    expand_templates,
    expectations_dir,
    load_suite_dict,
    suite_parameters,
)

T0 = 1_500_000_000
ROWS = [
    (f"u{u}", f"i{(u * 7 + k * 3) % 40}", T0 + 3600 * k + (k % 2))
    for u in range(12)
    for k in range(6)
]
ROWS += [("u0", "i39", T0 + 3600 * 9), ("u0", "i38", T0 + 3600 * 9)]  # a tie at the end
CATEGORIES = {f"i{k}": f"c{k % 6}" for k in range(40)}


@pytest.fixture(scope="module")
def prepared():
    return build_samples(canonical(ROWS, CATEGORIES), seed=5)


def test_suite_files_are_great_expectations_suites():
    import great_expectations as gx

    names = sorted(p.stem for p in expectations_dir().glob("*.json"))
    assert names == [
        "canonical_behaviors",
        "canonical_interactions",
        "canonical_items",
        "canonical_users",
        "samples",
    ]
    for name in names:
        suite = gx.ExpectationSuite(**load_suite_dict(name))
        assert suite.name == name and suite.expectations


def test_templates_expand_per_feature_and_every_parameter_is_bound(prepared):
    raw = load_suite_dict("samples")
    expanded = expand_templates(raw, prepared.feature_map)
    columns = [e["kwargs"].get("column") for e in expanded["expectations"]]
    for feature in ("item_id", "cate_id", "weekday", "hour"):
        assert columns.count(feature) == 2  # not null + inside the vocabulary
    for feature in ("hist_item_id", "hist_cate_id"):
        assert f"{feature}__max" in columns and f"{feature}__nulls" in columns
    text = json.dumps(expanded["expectations"])
    assert "{feature}" not in text and "{table}" not in text
    parameters = sample_parameters(prepared)
    assert suite_parameters(expanded) <= set(parameters)
    assert parameters["max_id__item_id"] == prepared.feature_map.tables["item_id"].vocab_size - 1
    assert parameters["positive_rate_min"] == parameters["positive_rate_max"] == 0.5
    # one suite serves every family: each feature gets its vocabulary-range check
    for family in spec_families():
        spec = load_spec(family)
        feature_map = FeatureMap(
            dataset=family,
            protocol=spec.protocol,
            max_len=spec.max_len,
            tables={t: TableSpec(t, 5) for t in spec.tables},
            features=spec.feature_specs(),
        )
        checked = {
            e["meta"]["feature"]
            for e in expand_templates(raw, feature_map)["expectations"]
            if e["type"] == "expect_column_values_to_be_between" and "feature" in e["meta"]
        }
        assert checked == {f.name for f in spec.features}


def test_good_samples_pass_and_the_result_is_json(prepared):
    outcome = validate_samples(prepared)
    assert outcome["success"] and len(outcome["runs"]) == 1  # the three splits in one run
    run = outcome["runs"][0]
    assert run["rows"] == sum(len(frame) for frame in prepared.splits.values())
    assert run["parameters"]["max_len"] == 100
    assert run["statistics"]["unsuccessful_expectations"] == 0
    json.dumps(outcome)  # validation.json


def corrupted(prepared, split: str, **columns: pl.Expr):
    prepared.splits = dict(prepared.splits)
    prepared.splits[split] = prepared.splits[split].with_columns(**columns)
    return prepared


def test_bad_samples_give_a_readable_summary():
    prepared = build_samples(canonical(ROWS, CATEGORIES), seed=5)
    n = sum(len(frame) for frame in prepared.splits.values())
    vocab = prepared.feature_map.tables["item_id"].vocab_size
    row = pl.int_range(pl.len())
    corrupted(
        prepared,
        "train",
        item_id=pl.when(row < 3).then(vocab + row).otherwise(pl.col("item_id")),
        label=pl.when(row == 4).then(pl.lit(2, pl.Int8)).otherwise(pl.col("label")),
        cate_id=pl.when(row == 5).then(None).otherwise(pl.col("cate_id")),
    )
    with pytest.raises(ValidationFailed) as failure:
        validate_samples(prepared)
    summary = failure.value.summary
    assert f"suite 'samples' on amazon samples ({n:,} rows): 4 of 34 expectations failed" in summary
    assert (
        f"expect_column_values_to_be_between on column 'item_id' (min_value=1, "
        f"max_value={vocab - 1}): 3 of {n:,} rows unexpected, e.g. [{vocab} (train), "
        f"{vocab + 1} (train), {vocab + 2} (train)]" in summary
    )
    assert (
        "expect_column_values_to_be_in_set on column 'label' (value_set=[0, 1]): "
        f"1 of {n:,} rows unexpected, e.g. [2 (train)]" in summary
    )
    assert "expect_column_values_to_not_be_null on column 'cate_id': 1 of" in summary
    train = len(prepared.splits["train"])
    assert (
        "expect_column_mean_to_be_between on column 'label' where split == 'train' "
        f"(min_value=0.5, max_value=0.5): observed {round((train / 2 + 1) / train, 6)}" in summary
    )  # one label 1 became a 2; the other splits keep exactly half
    assert failure.value.result["success"] is False


def test_history_longer_than_max_len_and_unequal_sequences_fail():
    prepared = build_samples(canonical(ROWS, CATEGORIES), seed=5, max_len=3)
    corrupted(
        prepared,
        "test",
        hist_item_id=pl.col("hist_item_id").list.concat(pl.col("hist_item_id")),
    )
    with pytest.raises(ValidationFailed) as failure:
        validate_samples(prepared)
    summary = failure.value.summary
    assert (
        "expect_column_values_to_be_between on column 'hist_len' (min_value=0, max_value=3)"
        in summary
    )
    assert "(test)" in summary and "(train)" not in summary
    assert "columns 'hist_len' vs 'hist_cate_id__len'" in summary


def test_a_history_that_includes_its_own_target_is_caught_even_on_equal_timestamps():
    """An off-by-one in the slicing (end = target + 1) must not pass validation."""
    data = canonical(ROWS, CATEGORIES)
    coded = code_canonical(data, spec_for_layout(data.layout))
    result = run_protocol(coded, seed=5, max_len=100)
    result.samples.hist_end = result.samples.hist_end + 1  # history now ends with the target
    broken = assemble(
        coded, result, dataset="amazon", layout=data.layout, max_len=100, synthetic=False
    )
    with pytest.raises(ValidationFailed) as failure:
        validate_samples(broken)
    summary = failure.value.summary
    assert "columns 'target_order' vs 'hist_max_order' (or_equal=False)" in summary
    # the timestamp check alone allows equal times, so it cannot see this bug
    assert "columns 'timestamp' vs 'hist_max_timestamp'" not in summary


def test_history_event_after_the_target_fails_the_timestamp_check(prepared):
    audit = dict(prepared.audit)
    audit["valid"] = audit["valid"].with_columns(
        hist_max_timestamp=pl.col("hist_max_timestamp") + 10**6
    )
    prepared.audit = audit
    with pytest.raises(ValidationFailed, match="'timestamp' vs 'hist_max_timestamp'"):
        validate_samples(prepared)


def test_canonical_checks_name_table_column_and_examples():
    data = canonical(ROWS, CATEGORIES)
    assert validate_canonical(data)["success"]
    data.items = pl.concat([data.items, data.items.head(2)])
    data.interactions = data.interactions.with_columns(
        timestamp=pl.when(pl.col("line") < 2)
        .then(pl.col("timestamp") * 1000)
        .otherwise(pl.col("timestamp"))
    )
    with pytest.raises(ValidationFailed) as failure:
        validate_canonical(data)
    summary = failure.value.summary
    assert "suite 'canonical_items' on amazon/items" in summary
    assert "expect_column_values_to_be_unique on column 'item_id'" in summary
    assert "suite 'canonical_interactions' on amazon/interactions" in summary
    assert f"2 of {len(ROWS):,} rows unexpected, e.g. [{ROWS[0][2] * 1000}" in summary


def test_a_missing_suite_parameter_is_a_config_error():
    suite = load_suite_dict("samples")
    with pytest.raises(ConfigError, match="needs parameters"):
        run_suite(suite, pl.DataFrame({"label": [1]}), {}, batch="x")

"""Every model of the registry: shapes, gradients, config handling, eval independence."""

from __future__ import annotations

import copy
import io
import re

import pytest
import torch
import yaml

from din_model.errors import ConfigError
from din_model.models import build_model
from din_model.registry import model_defaults, model_entry, model_names

from .builders import pad_more, random_batch, small_config, toy_feature_map

MODEL_NAMES = model_names()


def _build(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(name, toy_feature_map(), small_config(name, **overrides))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_gives_one_finite_float32_logit_per_sample(name):
    model = _build(name)
    batch = random_batch(16, 12)
    for training in (True, False):
        model.train(training)
        logits = model(batch)
        assert logits.shape == (16,)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backward_reaches_every_parameter_and_only_the_batch_rows(name):
    model = _build(name)
    batch = random_batch(16, 12, seed=1)
    model(batch).sum().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.count_nonzero(param.grad) > 0, f"{param_name} got a zero gradient"
    for table_name, table in model.embedding_tables().items():
        ids = model.ids_by_table(batch)[table_name]
        used = torch.zeros(table.num_embeddings, dtype=torch.bool)
        used[ids] = True
        used[0] = False  # padding
        row_has_grad = table.weight.grad.abs().sum(1) > 0
        assert torch.equal(row_has_grad, used), f"{table_name}: rows with gradient != batch rows"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_output_of_a_sample_does_not_depend_on_its_batch(name):
    model = _build(name, activation="dice") if name != "lr" else _build(name)
    model.train()
    for seed in range(3):  # move Dice's moving averages
        model(random_batch(32, 12, seed=seed))
    model.eval()
    batch = random_batch(8, 12, seed=5)
    together = model(batch)
    alone = torch.cat([model({k: v[i : i + 1] for k, v in batch.items()}) for i in range(8)])
    torch.testing.assert_close(alone, together, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_extra_batch_keys_and_wider_padding_change_nothing(name):
    model = _build(name).eval()
    batch = random_batch(8, 12, seed=2)
    logits = model(batch)
    extra = {**batch, "label": torch.ones(8), "user_id": torch.arange(8), "foo": torch.ones(8)}
    torch.testing.assert_close(model(extra), logits, atol=0, rtol=0)
    torch.testing.assert_close(model(pad_more(batch, 5)), logits, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_same_model_and_state_dict_round_trip(name):
    a, b = _build(name, seed=3), _build(name, seed=3)
    batch = random_batch(8, 12)
    torch.testing.assert_close(a.eval()(batch), b.eval()(batch), atol=0, rtol=0)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    c = _build(name, seed=99).eval()
    c.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(c(batch), a(batch), atol=0, rtol=0)


def test_lr_is_bias_plus_sparse_weights_plus_mean_sequence_weights():
    model = _build("lr")
    with torch.no_grad():
        for table in model.embedding_tables().values():
            table.weight[1:].normal_()
        model.linear.bias.fill_(0.3)
    batch = random_batch(6, 5)
    w = {name: model.embedding.table_of(name).weight[:, 0] for name in batch}
    mask = batch["hist_item_id"] != 0
    count = mask.sum(1).clamp_min(1)
    expected = 0.3 + sum(w[n][batch[n]] for n in ("gender", "item_id", "cate_id", "hour"))
    for name in ("hist_item_id", "hist_cate_id"):
        expected = expected + (w[name][batch[name]] * mask).sum(1) / count
    torch.testing.assert_close(model(batch), expected.detach())


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_base_model_pooling_modes(mode):
    model = _build("base", pooling_mode=mode).eval()
    assert model.pooling.mode == mode
    assert torch.isfinite(model(random_batch(8, 6))).all()


def test_models_without_sequences_work_but_din_refuses():
    fm = toy_feature_map(with_sequences=False)
    batch = {k: v for k, v in random_batch(4, 3).items() if not k.startswith("hist_")}
    for name in ("lr", "base", "wide_deep", "pnn", "deepfm"):
        assert build_model(name, fm, small_config(name))(batch).shape == (4,)
    with pytest.raises(ConfigError, match="behaviour sequences"):
        build_model("din", fm, small_config("din"))


# -- configuration ----------------------------------------------------------------------


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        build_model("xgboost", toy_feature_map(), {})
    for name in MODEL_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("base", "mlp_hidden", "200-80"),
        ("base", "mlp_hidden", [200, 0]),
        ("base", "activation", "tanh"),
        ("base", "dropout", 1.5),
        ("base", "embedding_dim", 0),
        ("base", "pooling_mode", "median"),
        ("pnn", "product_type", "kernel"),
        ("din", "attention_input", "concat"),
        ("din", "attention_hidden", []),
        ("din", "attention_softmax", "yes"),
        ("lr", "linear_pooling", "max"),
    ],
)
def test_bad_values_are_config_errors_naming_the_key(name, key, value):
    with pytest.raises(ConfigError, match=re.escape(f"model.{key}")):
        build_model(name, toy_feature_map(), {**small_config(name), key: value})


def test_unknown_keys_fail_and_other_models_keys_are_ignored():
    fm = toy_feature_map()
    with pytest.raises(ConfigError, match="mlp_hiden"):
        build_model("din", fm, {"mlp_hiden": [10]})
    model = build_model("din", fm, {**small_config("din"), "pooling_mode": "mean"})
    assert "pooling_mode" not in model.model_config
    with pytest.raises(ConfigError, match="model.name"):  # the same rule as resolve_config
        build_model("din", fm, {"name": "din"})


def test_pairwise_models_need_one_embedding_width():
    fm = toy_feature_map()
    for name in ("pnn", "deepfm"):
        with pytest.raises(ConfigError, match="one\\s+width"):
            build_model(name, fm, {**small_config(name), "embedding_dims": {"cate_id": 4}})
    base = build_model("base", fm, {**small_config("base"), "embedding_dims": {"cate_id": 4}})
    assert base.embedding_tables()["cate_id"].embedding_dim == 4


def test_din_and_din_dice_defaults():
    din, din_dice = model_defaults("din"), model_defaults("din_dice")
    assert (din["activation"], din["attention_activation"]) == ("prelu", "prelu")
    assert (din_dice["activation"], din_dice["attention_activation"]) == ("dice", "dice")
    for cfg in (din, din_dice):
        assert cfg["mlp_hidden"] == [200, 80] and cfg["attention_hidden"] == [80, 40]
        assert cfg["attention_input"] == "diff_prod" and cfg["attention_softmax"] is False
    assert model_defaults("base")["pooling_mode"] == "sum"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_yaml_documents_every_key_and_builds(name):
    path = model_entry(name).path
    lines = path.read_text().splitlines()
    keys = yaml.safe_load(path.read_text())["model"]
    for key in keys:
        (index,) = [i for i, line in enumerate(lines) if line.startswith(f"  {key}:")]
        assert lines[index - 1].strip().startswith("#"), f"{path}: {key} has no comment"
    # The defaults alone build a working model: every key a model reads has a default.
    model = build_model(name, toy_feature_map(), {})
    assert set(model.model_config) == set(keys)
    copy.deepcopy(model)(random_batch(4, 3))


def test_cli_name_lists_match_the_registries() -> None:
    """The torch-free name lists the CLI offers must be exactly what the registries build."""
    from din_model.cli._main import build_parser
    from din_model.registry import REGULARIZER_NAMES
    from din_model.regularizers import REGULARIZERS
    from flows.cli import COMMAND_PACKAGES

    run = build_parser(COMMAND_PACKAGES)._subparsers._group_actions[0].choices["run"]
    offered = {action.dest: action.choices for action in run._actions}
    assert model_names() == tuple(offered["model"])
    assert tuple(REGULARIZER_NAMES) == tuple(REGULARIZERS) == tuple(offered["regularizer"])

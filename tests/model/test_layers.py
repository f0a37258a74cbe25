"""Shared layers: embeddings, masked pooling, MLP, activations, interactions, attention."""

from __future__ import annotations

import pytest
import torch

from din_model.errors import ConfigError
from din_model.layers import (
    MLP,
    DiffProductInput,
    FeatureEmbedding,
    InnerProduct,
    LocalActivationUnit,
    OuterProduct,
    OuterProductInput,
    PReLU,
    SequencePooling,
    fm_second_order,
    make_activation,
    masked_max,
    masked_softmax,
    resolve_embedding_dims,
)
from din_model.layers.dice import Dice

from .builders import random_batch, random_lengths, toy_feature_map


def _mask(batch_size: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(batch_size, length, g)
    return torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)


# -- embeddings -------------------------------------------------------------------------


def test_one_table_per_vocabulary_shared_by_sequence_and_target():
    fm = toy_feature_map()
    emb = FeatureEmbedding(fm, resolve_embedding_dims(fm, 8))
    assert set(emb.tables) == set(fm.tables)
    assert emb.table_of("hist_item_id") is emb.table_of("item_id")
    assert emb.table_of("hist_cate_id") is emb.table_of("cate_id")
    embedded = emb(random_batch(8, 5))
    assert embedded.sequences["hist_item_id"].shape == (8, 5, 8)
    assert embedded.sparse["gender"].shape == (8, 8)
    assert embedded.mask.shape == (8, 5)
    # Same id, same vector, whether it comes as a behaviour or as the candidate.
    ids = {"item_id": torch.tensor([7]), "hist_item_id": torch.tensor([[7]])}
    table = emb.table_of("item_id")
    assert torch.equal(table(ids["item_id"])[0], table(ids["hist_item_id"])[0, 0])


def test_padding_row_is_zero_and_never_gets_a_gradient():
    fm = toy_feature_map()
    emb = FeatureEmbedding(fm, resolve_embedding_dims(fm, 4), init_std=1.0)
    for table in emb.tables.values():
        assert torch.count_nonzero(table.weight[0]) == 0
    embedded = emb(random_batch(8, 6))
    loss = sum(v.sum() for v in embedded.sequences.values()) + sum(
        v.sum() for v in embedded.sparse.values()
    )
    loss.backward()
    for table in emb.tables.values():
        assert torch.count_nonzero(table.weight.grad[0]) == 0


def test_embedding_dims_override_per_table_and_reject_unknown_tables():
    fm = toy_feature_map()
    dims = resolve_embedding_dims(fm, 8, {"cate_id": 3})
    assert dims == {"item_id": 8, "cate_id": 3, "gender": 8, "hour": 8}
    with pytest.raises(ConfigError, match="brand_id"):
        resolve_embedding_dims(fm, 8, {"brand_id": 4})
    with pytest.raises(ConfigError, match="cate_id"):
        resolve_embedding_dims(fm, 8, {"cate_id": 0})


def test_linear_column_gives_one_weight_per_id():
    fm = toy_feature_map()
    emb = FeatureEmbedding(fm, resolve_embedding_dims(fm, 4), linear_column=True)
    assert emb.table_of("item_id").weight.shape == (fm.tables["item_id"].vocab_size, 5)
    embedded = emb(random_batch(8, 6))
    assert embedded.sparse["item_id"].shape == (8, 4)
    assert embedded.sparse_weights["item_id"].shape == (8,)
    assert embedded.sequence_weights["hist_item_id"].shape == (8, 6)


def test_missing_batch_column_is_a_config_error():
    fm = toy_feature_map()
    emb = FeatureEmbedding(fm, resolve_embedding_dims(fm, 4))
    batch = random_batch(4, 3)
    del batch["hour"]
    with pytest.raises(ConfigError, match="hour"):
        emb(batch)


# -- pooling ----------------------------------------------------------------------------


def _loop_pool(values: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    rows = []
    for b in range(values.shape[0]):
        valid = values[b][mask[b]]
        if valid.shape[0] == 0:
            rows.append(torch.zeros(values.shape[2]))
        elif mode == "sum":
            rows.append(valid.sum(0))
        elif mode == "mean":
            rows.append(valid.mean(0))
        else:
            rows.append(valid.max(0).values)
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_masked_pooling_matches_a_loop_and_ignores_padded_values(mode):
    torch.manual_seed(0)
    mask = _mask(10, 7)
    values = torch.randn(10, 7, 5) - 3.0  # mostly negative: max must not return 0 for them
    pooled = SequencePooling(mode)(values, mask)
    torch.testing.assert_close(pooled, _loop_pool(values, mask, mode))
    # Garbage at padded positions changes nothing: the mask decides, not the values.
    garbage = values.masked_fill(~mask.unsqueeze(-1), 1e6)
    torch.testing.assert_close(SequencePooling(mode)(garbage, mask), pooled)
    assert torch.count_nonzero(pooled[0]) == 0  # row 0 has no valid position


def test_masked_max_of_empty_rows_has_finite_gradients():
    values = torch.randn(3, 4, 2, requires_grad=True)
    mask = torch.tensor([[False] * 4, [True, False, False, False], [True] * 4])
    masked_max(values, mask).sum().backward()
    assert torch.isfinite(values.grad).all()
    assert torch.count_nonzero(values.grad[0]) == 0


def test_unknown_pooling_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="median"):
        SequencePooling("median")


# -- MLP and activations ----------------------------------------------------------------


def test_mlp_layers_follow_the_config():
    mlp = MLP(10, [7, 5], "prelu", dropout=0.2, output_dim=1)
    widths = [(b.linear.in_features, b.linear.out_features) for b in mlp.blocks]
    assert widths == [(10, 7), (7, 5)]
    assert all(b.norm is None for b in mlp.blocks)  # batch norm off by default
    assert all(isinstance(b.activation, PReLU) for b in mlp.blocks)
    assert mlp(torch.randn(4, 10)).shape == (4, 1)
    with_bn = MLP(10, [7], "relu", batch_norm=True)
    assert isinstance(with_bn.blocks[0].norm, torch.nn.BatchNorm1d)
    assert with_bn(torch.randn(4, 10)).shape == (4, 7)
    mlp.eval()
    x = torch.randn(4, 10)
    assert torch.equal(mlp(x), mlp(x))  # no dropout at eval


def test_prelu_has_one_slope_per_unit_of_the_last_dimension():
    act = PReLU(5)
    with torch.no_grad():
        act.weight.copy_(torch.arange(5, dtype=torch.float32) / 10)
    x = torch.randn(2, 3, 5)  # dim 1 (3) is not the unit axis
    expected = torch.where(x >= 0, x, x * act.weight)
    torch.testing.assert_close(act(x), expected)


def test_activation_factory():
    assert isinstance(make_activation("relu", 3), torch.nn.ReLU)
    assert isinstance(make_activation("prelu", 3), PReLU)
    assert isinstance(make_activation("dice", 3), Dice)
    with pytest.raises(ConfigError, match="relu, prelu, dice"):
        make_activation("tanh", 3)


# -- interactions -----------------------------------------------------------------------


def test_fm_and_product_layers_match_pairwise_loops():
    torch.manual_seed(0)
    fields = torch.randn(4, 5, 3)
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    expected_fm = sum((fields[:, i] * fields[:, j]).sum(1) for i, j in pairs)
    torch.testing.assert_close(fm_second_order(fields), expected_fm)
    expected_inner = torch.stack([(fields[:, i] * fields[:, j]).sum(1) for i, j in pairs], 1)
    torch.testing.assert_close(InnerProduct(5)(fields), expected_inner)
    total = fields.sum(1)
    expected_outer = torch.stack([torch.outer(t, t).flatten() for t in total])
    torch.testing.assert_close(OuterProduct(3)(fields), expected_outer)


# -- attention --------------------------------------------------------------------------


def test_decomposed_first_layer_equals_the_naive_concatenation():
    torch.manual_seed(0)
    layer = DiffProductInput(6, 9).double()
    keys, query = torch.randn(5, 7, 6).double(), torch.randn(5, 6).double()
    q = query.unsqueeze(1).expand_as(keys)
    naive = layer.linear(torch.cat([keys, q, keys - q, keys * q], dim=-1))
    torch.testing.assert_close(layer(keys, query), naive, atol=1e-6, rtol=0)
    # Same in float32, the dtype of training.
    layer32 = layer.float()
    naive32 = layer32.linear(torch.cat([keys, q, keys - q, keys * q], dim=-1).float())
    torch.testing.assert_close(layer32(keys.float(), query.float()), naive32, atol=1e-6, rtol=0)
    # Packed rows: (N, D) keys with the index of their sample.
    sample = torch.tensor([0, 0, 3, 4])
    position = torch.tensor([0, 2, 1, 6])
    rows = layer32.rows(keys.float()[sample, position], query.float(), sample)
    torch.testing.assert_close(rows, naive32[sample, position], atol=1e-6, rtol=0)


def test_outer_product_input_equals_the_naive_concatenation():
    torch.manual_seed(0)
    layer = OuterProductInput(4, 6)
    keys, query = torch.randn(3, 5, 4), torch.randn(3, 4)
    q = query.unsqueeze(1).expand_as(keys)
    outer = (keys.unsqueeze(-1) * q.unsqueeze(-2)).flatten(2)  # vec(k q^T), row-major
    naive = layer.linear(torch.cat([keys, q, outer], dim=-1))
    torch.testing.assert_close(layer(keys, query), naive, atol=1e-6, rtol=0)


def test_masked_softmax_is_zero_at_padding_and_sums_to_one_elsewhere():
    mask = _mask(6, 5)
    scores = torch.randn(6, 5) * 10
    weights = masked_softmax(scores, mask)
    assert torch.isfinite(weights).all()
    assert torch.count_nonzero(weights[~mask]) == 0
    sums = weights.sum(1)
    torch.testing.assert_close(sums[mask.any(1)], torch.ones(int(mask.any(1).sum())))
    assert sums[0] == 0  # the empty row


@pytest.mark.parametrize("activation", ["prelu", "dice"])
@pytest.mark.parametrize("training", [True, False])
def test_packed_unit_equals_dense_unit(activation, training):
    torch.manual_seed(0)
    dense = LocalActivationUnit(6, [8, 4], activation, packed=False)
    packed = LocalActivationUnit(6, [8, 4], activation, packed=True)
    packed.load_state_dict(dense.state_dict())
    dense.train(training)
    packed.train(training)
    mask = _mask(9, 7)
    keys = torch.randn(9, 7, 6).masked_fill(~mask.unsqueeze(-1), 0.0).requires_grad_()
    query = torch.randn(9, 6)
    dense_scores = dense(keys, query, mask).masked_fill(~mask, 0.0)
    packed_scores = packed(keys, query, mask)
    torch.testing.assert_close(packed_scores, dense_scores, atol=1e-6, rtol=1e-5)
    (grad_dense,) = torch.autograd.grad(dense_scores.square().sum(), keys)
    (grad_packed,) = torch.autograd.grad(packed_scores.square().sum(), keys)
    torch.testing.assert_close(grad_packed, grad_dense, atol=1e-6, rtol=1e-5)
    for name, buffer in dense.named_buffers():  # Dice saw the same (valid) rows
        torch.testing.assert_close(dict(packed.named_buffers())[name], buffer)


def test_packed_unit_with_no_valid_position_returns_zeros():
    unit = LocalActivationUnit(4, [6], "dice", packed=True)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    scores = unit(torch.zeros(3, 5, 4), torch.randn(3, 4), mask)
    assert scores.shape == (3, 5) and torch.count_nonzero(scores) == 0
    assert torch.isfinite(unit.input_activation.running_mean).all()


def test_a_position_is_valid_while_any_of_its_ids_is_present():
    fm = toy_feature_map()
    emb = FeatureEmbedding(fm, resolve_embedding_dims(fm, 4))
    batch = random_batch(4, 3)
    batch["hist_item_id"] = torch.tensor([[5, 0, 0], [0, 0, 0], [5, 6, 7], [5, 0, 0]])
    batch["hist_cate_id"] = torch.tensor([[2, 0, 0], [0, 0, 0], [2, 0, 3], [2, 3, 0]])
    expected = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    assert torch.equal(emb(batch).mask, expected)

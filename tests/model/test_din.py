"""DIN: padding never matters, attention with weights 1 is sum pooling, weights introspection,
and the activation unit actually learns to match behaviours with the candidate."""

from __future__ import annotations

import copy

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from din_model.layers.pooling import masked_sum
from din_model.models import build_model

from .builders import pad_more, random_batch, small_config, toy_feature_map


def _din(name: str = "din", seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(name, toy_feature_map(), small_config(name, **overrides))


class ConstantScores(nn.Module):
    """An activation unit that gives every position the score 1."""

    def forward(self, keys, query, mask):
        return torch.ones_like(mask, dtype=keys.dtype)


@pytest.mark.parametrize("name", ["din", "din_dice"])
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"attention_softmax": True},
        {"attention_packed": False},
        {"attention_packed": False, "attention_softmax": True},
        {"attention_input": "outer"},
    ],
    ids=["packed", "softmax", "dense", "dense-softmax", "outer"],
)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_appending_padded_positions_never_changes_the_output(name, variant, training):
    model = _din(name, **variant)
    model.train()
    for seed in range(2):  # give Dice moving averages that are not the initial 0/1
        model(random_batch(16, 8, seed=10 + seed))
    model.train(training)
    batch = random_batch(16, 8, seed=3)
    # Each call in its own copy: in training, Dice updates its moving averages.
    narrow = copy.deepcopy(model)(batch)
    for extra in (1, 7):
        wide = copy.deepcopy(model)(pad_more(batch, extra))
        torch.testing.assert_close(wide, narrow, atol=1e-6, rtol=1e-5)
    narrow_weights = copy.deepcopy(model).attention_weights(batch)
    wide_weights = copy.deepcopy(model).attention_weights(pad_more(batch, 4))
    torch.testing.assert_close(wide_weights[:, :8], narrow_weights, atol=1e-6, rtol=1e-5)
    assert torch.count_nonzero(wide_weights[:, 8:]) == 0


@pytest.mark.parametrize("name", ["din", "din_dice"])
def test_attention_forced_to_one_is_sum_pooling(name):
    din = _din(name)
    din.attention.unit = ConstantScores()
    torch.manual_seed(1)
    base = build_model("base", toy_feature_map(), small_config("base", pooling_mode="sum"))
    base_cfg = small_config("base", activation=din.model_config["activation"])
    base = build_model("base", toy_feature_map(), base_cfg)
    missing, unexpected = base.load_state_dict(din.state_dict(), strict=False)
    assert not missing and all(key.startswith("attention.") for key in unexpected)
    batch = random_batch(16, 10, seed=4)
    for training in (False, True):
        din.train(training)
        base.train(training)
        torch.testing.assert_close(
            copy.deepcopy(din)(batch), copy.deepcopy(base)(batch), atol=1e-6, rtol=1e-5
        )
    # ... and the pooled vector is the masked sum of the keys.
    embedded = din.embedding(batch)
    keys, query = din.behaviour_keys(embedded), din.behaviour_query(embedded)
    torch.testing.assert_close(
        din.attention(keys, query, embedded.mask), masked_sum(keys, embedded.mask)
    )


@pytest.mark.parametrize("softmax", [False, True])
def test_attention_weights_are_the_ones_the_forward_pass_uses(softmax):
    din = _din("din_dice", attention_softmax=softmax).eval()
    batch = random_batch(16, 10, seed=6)
    weights = din.attention_weights(batch)
    mask = batch["hist_item_id"] != 0
    assert weights.shape == (16, 10)
    assert torch.count_nonzero(weights[~mask]) == 0
    assert torch.count_nonzero(weights[0]) == 0  # the empty history
    if softmax:
        torch.testing.assert_close(weights.sum(1)[1:], torch.ones(15))
    embedded = din.embedding(batch)
    interest = torch.bmm(weights.unsqueeze(1), din.behaviour_keys(embedded)).squeeze(1)
    expected = din.mlp(din.deep_input(embedded, interest)).squeeze(-1)
    torch.testing.assert_close(din(batch), expected)


@pytest.mark.parametrize("name", ["din", "din_dice"])
def test_packed_and_dense_attention_give_the_same_model(name):
    packed = _din(name, attention_packed=True).train()
    dense = _din(name, attention_packed=False).train()
    dense.load_state_dict(packed.state_dict())
    batch = random_batch(32, 12, seed=7)
    packed(batch).square().sum().backward()
    dense(batch).square().sum().backward()
    dense_params = dict(dense.named_parameters())
    for param_name, param in packed.named_parameters():
        torch.testing.assert_close(param.grad, dense_params[param_name].grad, atol=1e-6, rtol=1e-4)


def _category_task(n: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Label 1 iff the candidate's category occurs in the history: only a model that
    compares behaviours with the candidate can do better than chance."""
    g = torch.Generator().manual_seed(seed)
    length = 6
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    valid = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    hist_item = torch.randint(2, 60, (n, length), generator=g) * valid
    hist_cate = (hist_item % 7 + 2) * valid  # item i belongs to category i % 7 + 2
    item = torch.randint(2, 60, (n,), generator=g)
    cate = item % 7 + 2
    label = (hist_cate == cate.unsqueeze(1)).any(1).float()
    batch = {
        "gender": torch.randint(2, 4, (n,), generator=g),
        "hour": torch.randint(2, 26, (n,), generator=g),
        "item_id": item,
        "cate_id": cate,
        "hist_item_id": hist_item,
        "hist_cate_id": hist_cate,
    }
    return batch, label


def test_din_learns_to_match_behaviours_with_the_candidate():
    train, train_label = _category_task(4096, seed=0)
    test, test_label = _category_task(2048, seed=1)
    din = _din("din", embedding_dim=16, embedding_init_std=0.05)
    optimizer = torch.optim.Adam(din.parameters(), lr=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(0)
    din.train()
    for _ in range(7):  # ~0.99 after 5 epochs; BaseModel (sum pooling) stays near 0.7
        for index in torch.randperm(4096, generator=order).split(256):
            batch = {k: v[index] for k, v in train.items()}
            loss = loss_fn(din(batch), train_label[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    din.eval()
    with torch.no_grad():
        scores = din(test)
    assert roc_auc_score(test_label.numpy(), scores.numpy()) > 0.95

"""The ranking path (one history, N candidates, DIN's key projection once) scores as the network.

The reference is :class:`EagerNetwork` (the model's own forward pass, packed or dense,
plus a float64 sigmoid) on the same N rows of ids, the user's features repeated, as
:meth:`RawEncoder.encode_ranking` hands them to ``RawScorer.rank``.

Tolerance: 1e-5 on probabilities. The ranking path is the same float32 model with the
first layer of the activation unit re-associated: (W_k + W_d) e_j + b is computed once
per request and, with the rows e_j * W_p[h] + (W_q - W_d)[h], makes one request matrix
that every candidate's [v_A, 1] multiplies, where the forward pass accumulates the key,
product and query terms inside ``addmm`` calls; Dice's normalisation is folded into
one scale and shift per unit; the pooling is a matrix product instead of an index-add.
Each re-associated float32 sum of D = 16 (here) to 128 (paper) terms of order one
differs by a few ulps (2**-24 ~ 6e-8 relative); through the unit's MLP, the pooling
and the output MLP that stays around 1e-7 on the logit, and the sigmoid's slope (at
most 1/4) only shrinks it: we see up to 2e-7 here (weights scaled up so that the
attention varies, logits of order ten) and about 1e-8 on a one-epoch paper-size model
(``key_projection.max_abs_diff`` of ``python -m bench.serving``). 1e-5 leaves room for other
CPUs' kernels and still catches a real error: leaving out any of the three terms, the
softmax or scaling the pooled interest by 1.001 fails these tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model.builders import CATES, GENDERS, HOURS, ITEMS, small_config, toy_feature_map

from din_model.data.specs.feature_map import OOV_ID
from din_model.models import build_model
from din_model.regularizers.filter import IdRemapModel
from din_model.serving.network_inputs import InputError, NetworkSignature
from din_model.serving.network_runtime import EagerNetwork
from din_model.serving.ranking import KeyProjectionDIN, RankingScorer, supports_key_projection

TOLERANCE = 1e-5  # see the module doc
MAX_LEN = 12  # the toy feature map's history length


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _trained_like(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A model in eval mode whose Dice moving averages are not their initial 0 / 1.

    Embeddings and weights are larger than at initialisation, as after training, so
    that the attention weights vary and a wrong term would show far above the bound.
    """
    from model.builders import random_batch

    torch.manual_seed(seed)
    config = small_config(name, **{"embedding_init_std": 0.5, **overrides})
    model = build_model(name, toy_feature_map(max_len=MAX_LEN), config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:  # every weight matrix and embedding table
                param.mul_(2.0)
    model.train()
    with torch.no_grad():
        for batch_seed in range(3):
            model(random_batch(32, MAX_LEN, seed=100 + batch_seed))
    return model.eval()


def _network(model: torch.nn.Module, max_len: int | None = None) -> EagerNetwork:
    config = {"train": {"max_len": max_len}} if max_len else {"train": {}}
    signature = NetworkSignature.from_checkpoint_parts(toy_feature_map(max_len=MAX_LEN), config)
    return EagerNetwork(model, signature)


def _ranking_inputs(
    history: int, candidates: int, seed: int = 0, width: int | None = None
) -> dict[str, np.ndarray]:
    """One user's encoded request against N candidates, as encode_ranking builds it."""
    rng = np.random.default_rng(seed)
    width = max(width or history, 1)
    items = np.zeros(width, dtype=np.int64)
    cates = np.zeros(width, dtype=np.int64)
    items[:history] = rng.integers(OOV_ID, ITEMS, history)
    cates[:history] = rng.integers(OOV_ID, CATES, history)
    return {
        "gender": np.full(candidates, rng.integers(1, GENDERS)),
        "hour": np.full(candidates, rng.integers(1, HOURS)),
        "hist_item_id": np.repeat(items[None], candidates, axis=0),
        "hist_cate_id": np.repeat(cates[None], candidates, axis=0),
        "item_id": rng.integers(OOV_ID, ITEMS, candidates),
        "cate_id": rng.integers(OOV_ID, CATES, candidates),
    }


VARIANTS = {
    "packed": {},
    "dense": {"attention_packed": False},
    "softmax": {"attention_softmax": True},
    "dropout": {"attention_dropout": 0.3, "dropout": 0.2},  # off in eval
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", ["din", "din_dice"])
def test_the_key_projection_scores_as_the_forward_pass(name: str, variant: str) -> None:
    network = _network(_trained_like(name, **VARIANTS[variant]))
    ranking = RankingScorer(network)
    assert ranking.uses_key_projection
    for seed, (history, candidates) in enumerate([(MAX_LEN, 40), (5, 7), (1, 3), (7, 1)]):
        inputs = _ranking_inputs(history, candidates, seed=seed, width=MAX_LEN)
        got = ranking.score(inputs)
        assert got.dtype == np.float64 and got.shape == (candidates,)
        np.testing.assert_allclose(got, network.score(inputs), rtol=0, atol=TOLERANCE)


def test_the_scores_depend_on_the_history_and_the_candidate() -> None:
    """Not vacuous: the model's scores move with both inputs by far more than the bound."""
    network = _network(_trained_like("din_dice"))
    ranking = RankingScorer(network)
    inputs = _ranking_inputs(MAX_LEN, 30, seed=1)
    scores = ranking.score(inputs)
    assert np.ptp(scores) > 10 * TOLERANCE
    other = dict(inputs, hist_item_id=np.roll(inputs["hist_item_id"], 1, axis=1) % 7 + 2)
    assert np.abs(ranking.score(other) - scores).max() > 10 * TOLERANCE


def test_a_history_longer_than_the_training_cut_keeps_its_most_recent_events() -> None:
    network = _network(_trained_like("din_dice"), max_len=5)
    ranking = RankingScorer(network)
    inputs = _ranking_inputs(MAX_LEN, 9, seed=4)
    np.testing.assert_allclose(ranking.score(inputs), network.score(inputs), atol=TOLERANCE)
    recent = {k: (v[:, -5:] if v.ndim == 2 else v) for k, v in inputs.items()}
    np.testing.assert_allclose(ranking.score(inputs), ranking.score(recent), atol=TOLERANCE)


@pytest.mark.parametrize("softmax", [False, True])
def test_an_empty_history_scores_as_the_forward_pass(softmax: bool) -> None:
    network = _network(_trained_like("din_dice", attention_softmax=softmax))
    inputs = _ranking_inputs(0, 6, seed=2)
    np.testing.assert_allclose(
        RankingScorer(network).score(inputs), network.score(inputs), atol=TOLERANCE
    )


def test_candidates_in_chunks_score_as_in_one() -> None:
    network = _network(_trained_like("din_dice"))
    inputs = _ranking_inputs(MAX_LEN, 23, seed=5)
    whole = RankingScorer(network).score(inputs)
    chunked = RankingScorer(network, chunk_candidates=4).score(inputs)
    # Chunking changes only the number of rows of the same float32 products, which may
    # pick another kernel blocking and so another summation order: the re-association
    # bound of the module doc, TOLERANCE, and nothing tighter holds on every CPU.
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=TOLERANCE)


def test_reused_buffers_neither_leak_between_calls_nor_between_threads() -> None:
    """The hidden layers' scratch tensors are reused per thread (ranking._scratch): the
    same request scores the same after other requests of the same shape, and requests
    scored at once from several threads score as they do alone (bit for bit: the same
    operations on the same shapes, only the buffers' owner differs)."""
    from concurrent.futures import ThreadPoolExecutor

    network = _network(_trained_like("din_dice"))
    ranking = RankingScorer(network)
    requests = [_ranking_inputs(MAX_LEN, 30, seed=seed) for seed in range(6)]
    alone = [ranking.score(inputs) for inputs in requests]
    np.testing.assert_array_equal(ranking.score(requests[0]), alone[0])
    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(5):
            together = list(pool.map(ranking.score, requests))
            for got, expected in zip(together, alone, strict=True):
                np.testing.assert_array_equal(got, expected)


def test_the_filter_id_remapping_applies_on_the_ranking_path() -> None:
    din = _trained_like("din_dice")
    lookup = torch.arange(ITEMS)
    lookup[10:] = OOV_ID  # the filter kept items below 10 only
    remaps = {"item_id": lookup, "hist_item_id": lookup}
    network = _network(IdRemapModel(din, remaps).eval())
    ranking = RankingScorer(network)
    assert ranking.uses_key_projection
    inputs = _ranking_inputs(MAX_LEN, 20, seed=6)
    np.testing.assert_allclose(ranking.score(inputs), network.score(inputs), atol=TOLERANCE)
    plain = RankingScorer(_network(din)).score(inputs)
    assert np.abs(ranking.score(inputs) - plain).max() > 10 * TOLERANCE  # remapping mattered


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("base", {}),
        ("din", {"attention_input": "outer"}),
        ("din_dice", {"attention_input": "outer"}),
    ],
)
def test_other_models_fall_back_to_the_network(name: str, overrides: dict) -> None:
    network = _network(_trained_like(name, **overrides))
    ranking = RankingScorer(network)
    assert not ranking.uses_key_projection
    assert not supports_key_projection(network.model)
    inputs = _ranking_inputs(6, 8, seed=3, width=MAX_LEN)
    np.testing.assert_array_equal(ranking.score(inputs), network.score(inputs))
    with pytest.raises(TypeError, match="diff_prod"):
        KeyProjectionDIN(network.model)


def test_rows_with_different_histories_take_the_general_path() -> None:
    network = _network(_trained_like("din"))
    inputs = _ranking_inputs(MAX_LEN, 10, seed=7)
    inputs["hist_item_id"] = inputs["hist_item_id"].copy()
    inputs["hist_item_id"][3, :4] = 0  # a shorter history in row 3: not one user's ranking
    np.testing.assert_array_equal(RankingScorer(network).score(inputs), network.score(inputs))


def test_bad_inputs_fail_as_on_the_network() -> None:
    ranking = RankingScorer(_network(_trained_like("din")))
    inputs = _ranking_inputs(4, 3)
    with pytest.raises(InputError, match="hist_cate_id"):
        ranking.score({k: v for k, v in inputs.items() if k != "hist_cate_id"})
    with pytest.raises(InputError, match="item_id"):
        ranking.score(dict(inputs, item_id=np.array([1, 2, ITEMS])))
    assert ranking.score({k: v[:0] for k, v in inputs.items()}).shape == (0,)


def test_the_ranking_path_refuses_a_model_in_training_mode() -> None:
    din = _trained_like("din_dice")
    ranking = KeyProjectionDIN(din)
    din.train()
    history = {"hist_item_id": torch.tensor([[2, 3]]), "hist_cate_id": torch.tensor([[2, 2]])}
    sparse = {name: torch.tensor([2]) for name in ("gender", "hour", "item_id", "cate_id")}
    with pytest.raises(RuntimeError, match="eval mode"):
        ranking.logits(history, sparse)

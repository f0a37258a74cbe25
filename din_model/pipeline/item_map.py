"""The data of the paper's Fig. 6: a 2-D map of the goods embeddings of a trained DIN.

Zhou et al. (KDD 2018, Sec. 6.8) show a t-SNE of the goods embeddings, each point
shaped by the item's category and coloured by the CTR the model predicts for one
user with that item as the candidate: items of a category cluster, and the user's
high-CTR items gather where the user's history lies. This module computes that map
from a run's best checkpoint and writes ``item_map.parquet`` (one row per item);
the figure is drawn from the file where the run is logged (``tasks/embedding_plots.py``),
so this module stays free of plotting and tracking code.

* Items: the ``train.item_map_items`` most frequent ids of the goods table in the
  training split (counted as MBA counts them, :func:`~din_model.regularizers.base.id_frequencies`;
  ties by id). The cap bounds the t-SNE's cost, which every DIN run pays.
* Coordinates: scikit-learn's Barnes-Hut t-SNE with a fixed ``random_state``, PCA
  initialisation and one thread (its OpenMP gradient sums in thread order), so the
  same run gives the same coordinates bit for bit.
* CTR: one test user, the first sample :func:`attention_examples.pick_rows` chooses
  for Fig. 5 (a positive whose history mixes categories; its first panel), scored
  with the user's real history, profile and context and each mapped item's ad
  features (item id, category, ...) as the candidate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from din_model.data.encoding.vocabulary import USER_KEY_TABLE, VOCAB_DIR
from din_model.data.samples.raw_inputs import RAW_INPUTS_FILE, read_raw_inputs
from din_model.data.specs.feature_map import FIRST_KNOWN_ID, FeatureMap
from din_model.errors import ConfigError
from din_model.io.atomic import atomic_output_file
from din_model.io.failures import writing
from din_model.pipeline.attention_examples import has_attention, pick_rows, relation_feature
from din_model.regularizers.base import id_frequencies, resolve_tables
from din_model.tensors.batches import take
from din_model.tensors.split import SplitTensors, load_prepared_split

ITEMS_KEY = "item_map_items"  # train.<key> in configs/train.yaml
DEFAULT_ITEMS = 1000  # for configs of checkpoints written before the key existed
TSNE_SEED = 0
# 250 early-exaggeration iterations plus 250 more: the layout of 1,000 points has settled
# by then, at half the cost of scikit-learn's default 1,000 (measured: 1.7 s vs 3.6 s CPU).
TSNE_ITERATIONS = 500
TSNE_PERPLEXITY = 30.0
SCORE_BATCH = 8192
METADATA_KEY = b"din.item_map"
COLUMNS = ("item_id", "item", "cate_id", "category", "train_count", "x", "y", "in_history", "ctr")


@dataclass(frozen=True)
class MapUser:
    """The test user whose predicted CTR colours the map."""

    user_id: int  # the prepared data's user key
    user: str | None  # the owner's raw user id (None without a vocabulary file)
    test_row: int  # the test sample whose history, profile and context were used
    history_length: int
    history_categories: int  # distinct values of the relation feature in the history


@dataclass
class ItemMap:
    """``item_map.parquet``: one row per item (see :data:`COLUMNS`) and what produced it."""

    frame: pl.DataFrame
    user: MapUser | None
    table: str  # the goods embedding table that was mapped
    category_feature: str | None  # the ad feature shown as the item's category
    settings: dict[str, Any] = field(default_factory=dict)


def item_map_size(train: Mapping[str, Any]) -> int:
    """``train.item_map_items``: a non-negative integer (0 = no map)."""
    value = train.get(ITEMS_KEY, DEFAULT_ITEMS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"train.{ITEMS_KEY}: expected a non-negative integer (0 = no item map), got {value!r}"
        )
    return value


def category_feature(feature_map: FeatureMap) -> str | None:
    """The ad feature that is the item's category: ``cate_id``, else the first ad feature a
    behaviour sequence is compared with other than the item itself; None if there is none."""
    ad = {spec.name: spec for spec in feature_map.group("ad")}
    if "cate_id" in ad:
        return "cate_id"
    item_table = resolve_tables(None, feature_map)[0]
    for spec in feature_map.sequence_features:
        if spec.target in ad and ad[spec.target].table != item_table:
            return spec.target
    return None


@dataclass(frozen=True)
class Catalogue:
    """The mapped items: ids (most frequent first), train counts, every ad feature's value."""

    ids: np.ndarray
    counts: np.ndarray
    ad_values: dict[str, np.ndarray]  # ad feature -> value per item, aligned with ``ids``


def item_catalogue(
    train: SplitTensors, feature_map: FeatureMap, table: str, limit: int
) -> Catalogue:
    """The ``limit`` most frequent ids of ``table`` whose ad features are all known.

    An item's ad features (its category, brand, ...) are item attributes: they are read
    from its first training sample as the candidate, or, for an item seen only in
    histories (the first item of each Amazon user), from the behaviour sequence of the
    same attribute at its first history position. An item with an attribute known from
    neither cannot be scored as a candidate and is left out.
    """
    vocab = feature_map.tables[table].vocab_size
    counts = id_frequencies(train, feature_map, table).numpy()
    ad = [spec.name for spec in feature_map.group("ad")]
    known = {name: np.full(vocab, -1, dtype=np.int64) for name in ad}
    item_features = [n for n in ad if feature_map.feature(n).table == table]
    for item_feature in item_features:
        ids = train.sparse[item_feature].numpy().astype(np.int64)
        unique, first = np.unique(ids, return_index=True)
        for name in ad:
            known[name][unique] = train.sparse[name].numpy()[first]
    histories = [s for s in feature_map.sequence_features if s.table == table]
    attributes = [  # behaviour twins of the item's attributes (hist_cate_id for cate_id)
        s
        for s in feature_map.sequence_features
        if s.target in known and s.target not in item_features
    ]
    for history in histories:
        items = train.sequences[history.name].numpy().astype(np.int64)
        lacking = np.zeros(vocab, dtype=bool)
        for name in [s.target for s in attributes] + item_features:
            lacking |= known[name] < 0
        lacking[0] = False  # padding
        # only the positions of items still lacking an attribute are sorted (few: the
        # items that never were a candidate), not every history position
        where = np.flatnonzero(lacking[items.reshape(-1)])
        unique, first = np.unique(items.reshape(-1)[where], return_index=True)
        for other in attributes:
            values = train.sequences[other.name].numpy().reshape(-1)[where[first]]
            missing = known[other.target][unique] < 0
            known[other.target][unique[missing]] = values[missing]
        for name in item_features:
            missing = known[name][unique] < 0
            known[name][unique[missing]] = unique[missing]
    ids = np.arange(vocab, dtype=np.int64)
    usable = (ids >= FIRST_KNOWN_ID) & (counts > 0)
    for values in known.values():
        usable &= values >= 0
    ids = ids[usable]
    order = np.lexsort((ids, -counts[ids]))[:limit]  # most frequent first, ties by id
    ids = ids[order]
    return Catalogue(ids, counts[ids], {name: values[ids] for name, values in known.items()})


def tsne_2d(vectors: np.ndarray, seed: int = TSNE_SEED) -> np.ndarray:
    """(n, 2) t-SNE coordinates of ``vectors``, the same for the same input.

    One thread for BLAS and OpenMP: scikit-learn's Barnes-Hut gradient adds its terms
    across OpenMP threads, whose order (and so the float rounding) could vary; one
    thread makes the result a fixed function of the input and the seed. It is also the
    faster setting on a busy 2-core machine (threads spin-wait on each other).
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(vectors)
    if n < 2:
        return np.zeros((n, 2))
    # perplexity must stay below n; a third of it keeps neighbourhoods local on small sets
    perplexity = min(TSNE_PERPLEXITY, max(1.0, (n - 1) / 3))
    settings = {"perplexity": perplexity, "random_state": seed, "max_iter": TSNE_ITERATIONS}
    with threadpool_limits(limits=1):
        coords = TSNE(2, init="pca", **settings).fit_transform(vectors)
        if not np.isfinite(coords).all():  # PCA of (near) identical rows divides by 0
            coords = TSNE(2, init="random", **settings).fit_transform(vectors)
    return np.asarray(coords, dtype=np.float64)


def user_ctr(
    model: nn.Module,
    test: SplitTensors,
    row: int,
    ad_values: Mapping[str, np.ndarray],
    device: torch.device,
) -> np.ndarray:
    """P(click) of test sample ``row``'s user for each item as the candidate.

    Everything but the ad features (profile, context, the history) is the sample's own;
    the ad features are replaced by each item's. Probabilities are the sigmoid of the
    logits in float64, as :mod:`din_model.training.evaluate` computes test scores.
    """
    base = take(test, torch.tensor([row]))
    n = len(next(iter(ad_values.values())))
    scores = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, SCORE_BATCH):
                stop = min(start + SCORE_BATCH, n)
                batch = {k: v.repeat(stop - start, *([1] * (v.dim() - 1))) for k, v in base.items()}
                for name, values in ad_values.items():
                    batch[name] = torch.as_tensor(values[start:stop], dtype=torch.long)
                on_device = {k: v.to(device) for k, v in batch.items()}
                scores.append(torch.sigmoid(model(on_device).double()).cpu())
    finally:
        model.train(was_training)
    return torch.cat(scores).numpy() if scores else np.zeros(0)


def raw_names(vocab_dir: Path, table: str, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Model id -> the owner's raw value of ``table``, for ``ids`` only when given (empty
    when there is no vocabulary file, e.g. a hashed table)."""
    path = Path(vocab_dir) / f"{table}.parquet"
    if not path.is_file():
        return {}
    frame = pl.read_parquet(path, glob=False)
    if ids is not None:
        frame = frame.filter(pl.col("id").is_in([int(i) for i in ids]))
    return dict(zip(frame["id"].to_list(), frame["raw"].cast(pl.String).to_list(), strict=True))


def feature_value_names(serving_dir: str | Path, feature: str) -> dict[int, str]:
    """Model id -> raw value of ``feature`` from a run's ``serving/`` folder (its request
    schema names the feature's table, its ``vocab/`` the values); empty when either is
    missing (a prepared folder older than raw serving, a hashed table)."""
    folder = Path(serving_dir)
    if not (folder / RAW_INPUTS_FILE).is_file():
        return {}
    tables = {raw.feature: raw.table for raw in read_raw_inputs(folder)}
    return raw_names(folder / VOCAB_DIR, tables[feature]) if feature in tables else {}


def build_item_map(
    model: nn.Module,
    test: SplitTensors,
    feature_map: FeatureMap,
    device: torch.device,
    data_dir: str | Path,
    *,
    items: int,
    max_len: int | None = None,
) -> ItemMap | None:
    """The item map of a model with an activation unit; None for other models or ``items=0``.

    ``test`` is the split the user is chosen from; the train split of ``data_dir`` (cut
    to ``max_len`` as in training) gives the item frequencies and attributes, and its
    ``vocab/`` the raw ids and category names.
    """
    if items == 0 or not has_attention(model):
        return None
    data_dir = Path(data_dir)
    table = resolve_tables(None, feature_map)[0]
    train = load_prepared_split(data_dir, "train", feature_map, max_len)
    catalogue = item_catalogue(train, feature_map, table, items)
    weights = model.embedding_tables()[table].weight.detach()
    vectors = weights[torch.as_tensor(catalogue.ids)].float().cpu().numpy()
    coords = tsne_2d(vectors)

    cat_feature = category_feature(feature_map)
    vocab = data_dir / VOCAB_DIR
    item_names = raw_names(vocab, table, catalogue.ids.tolist())
    cat_ids = catalogue.ad_values[cat_feature] if cat_feature else None
    cat_names = raw_names(vocab, feature_map.feature(cat_feature).table) if cat_feature else {}

    relation = relation_feature(feature_map)
    target = feature_map.feature(relation).target if relation is not None else None
    rows = pick_rows(test, 1, relation, target)
    user, ctr, in_history = None, None, np.zeros(len(catalogue.ids), dtype=bool)
    if rows:
        row = rows[0]
        length = int(test.lengths[row])
        key = int(test.user[row])
        categories = test.sequences[relation][row, :length] if relation else torch.zeros(0)
        user = MapUser(
            user_id=key,
            user=raw_names(vocab, USER_KEY_TABLE, [key]).get(key),
            test_row=row,
            history_length=length,
            history_categories=int(torch.unique(categories).numel()),
        )
        ctr = user_ctr(model, test, row, catalogue.ad_values, device)
        for history in (s for s in feature_map.sequence_features if s.table == table):
            seen = test.sequences[history.name][row, :length].cpu().numpy()
            in_history |= np.isin(catalogue.ids, seen)

    frame = pl.DataFrame(
        {
            "item_id": catalogue.ids,
            "item": [item_names.get(int(i)) for i in catalogue.ids],
            "cate_id": cat_ids,
            "category": [cat_names.get(int(c)) for c in cat_ids] if cat_ids is not None else None,
            "train_count": catalogue.counts,
            "x": coords[:, 0],
            "y": coords[:, 1],
            "in_history": in_history,
            "ctr": ctr,
        },
        schema={
            "item_id": pl.Int64,
            "item": pl.String,
            "cate_id": pl.Int64,
            "category": pl.String,
            "train_count": pl.Int64,
            "x": pl.Float64,
            "y": pl.Float64,
            "in_history": pl.Boolean,
            "ctr": pl.Float64,
        },
    )
    settings = {
        "items_requested": items,
        "tsne": {
            "method": "barnes_hut",
            "init": "pca",
            "random_state": TSNE_SEED,
            "max_iter": TSNE_ITERATIONS,
            "perplexity": min(TSNE_PERPLEXITY, max(1.0, (len(catalogue.ids) - 1) / 3)),
        },
    }
    return ItemMap(frame, user, table, cat_feature, settings)


def write_item_map(path: Path, item_map: ItemMap) -> None:
    """``item_map.parquet`` (atomically), with the user and settings as file metadata."""
    table = item_map.frame.to_arrow()
    info = {
        "table": item_map.table,
        "category_feature": item_map.category_feature,
        "user": asdict(item_map.user) if item_map.user is not None else None,
        "settings": item_map.settings,
    }
    metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(info).encode()}
    import pyarrow.parquet as pq

    with writing(path), atomic_output_file(path) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)


def read_item_map(path: str | Path) -> ItemMap:
    """An ``item_map.parquet`` written by :func:`write_item_map`."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    info = json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))
    user = info.get("user")
    return ItemMap(
        frame=pl.from_arrow(table),
        user=MapUser(**user) if user else None,
        table=info.get("table", ""),
        category_feature=info.get("category_feature"),
        settings=info.get("settings", {}),
    )


def write_run_item_map(
    path: Path,
    model: nn.Module,
    test: SplitTensors,
    feature_map: FeatureMap,
    device: torch.device,
    data_dir: str | Path,
    train: Mapping[str, Any],
) -> ItemMap | None:
    """What :func:`din_model.pipeline.fit_and_score` calls: build and write the map of a run
    (``train`` is the resolved ``train`` config section); None when there is none to write."""
    item_map = build_item_map(
        model,
        test,
        feature_map,
        device,
        data_dir,
        items=item_map_size(train),
        max_len=train.get("max_len"),
    )
    if item_map is not None:
        write_item_map(path, item_map)
    return item_map

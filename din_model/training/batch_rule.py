"""``train.batch_size_rule: auto``: a small training split gets a smaller batch.

The default batch sizes (256 in ``configs/train.yaml``, 1024 in the Amazon and
Taobao specs) were chosen for Amazon Electronics (2.6M training samples: 2,540
steps per epoch at 1024). Applied to a 5-core Amazon category such as
Magazine_Subscriptions (2,516 training samples) the 1024 of the Amazon spec
gives 3 optimisation steps per epoch and 9 in the 3 epochs of a run: the model
stays close to its random initialisation.

Why the number of steps per epoch is what matters: an embedding row moves by
about one Adam step each time its id is in a batch, so a sparse training split
is memorised after about the same number of epochs whatever the batch size
(the 164,060 samples of the Taobao slice, 55k items: the training loss is
below 0.3 after 3 epochs at every batch size from 128 to 1024). The
dense layers (activation unit, MLP) get one step per batch, n / B per epoch,
and must learn what generalises within those epochs. Measured on that slice
(DIN+Dice, Adam 1e-3): 161 steps per epoch (1024) -> validation GAUC 0.713 after
3 epochs; 321 (512) -> 0.742; 641 (256) -> 0.780; 1,282 (128) -> 0.798.

The rule keeps the configured batch size as the largest one and halves it
(powers of two below it) until an epoch has at least :data:`MIN_STEPS_PER_EPOCH`
steps, never below :data:`MIN_BATCH`:

* 500 steps: more than the 321 that were not enough on the Taobao slice, and
  early stopping, which compares whole epochs and stops after
  ``early_stopping_patience`` (2) epochs without a better validation metric,
  cannot end a run before 3 x 500 steps;
* 16 rows keep the batch statistics of Dice (a batch mean and variance per
  unit, like batch norm) usable: the standard error of a batch mean is 1/4 of
  the spread at 16 rows, 1/2 at 4 (Magazine at 8 rows was no better than at 16).
  The floor binds below 8,000 training samples (16 x 500): Magazine gets 158
  steps per epoch instead of 3.

With these numbers the defaults give: Magazine_Subscriptions 2,516 -> 16 (158
steps, the floor), Musical_Instruments 2014 11,948 -> 16 (747 steps),
MovieLens 100K 66,516 -> 128 (520 steps; was 256, 260), the Taobao slice
164,060 -> 256 (641 steps; was 1024, 161), Electronics-scale 1.7M-2.6M -> 1024
unchanged. A data set that already has 500 steps per epoch trains exactly as
before.

The rule runs once per fit, on the number of training samples (it depends on
nothing else), and the number it picks is written into the run's config: the
recorded ``config.yaml`` shows ``batch_size: 16`` and ``batch_size_rule:
auto``, and applying the rule again to that config on the same data gives 16
again (:func:`auto_batch_size` is idempotent), so a run is reproduced from its
config. A batch size a user gives (a config file, a preset, a Python dict,
``--set``) sets ``batch_size_rule: fixed`` (see
:mod:`din_model.config.resolve`) and is used as given.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from din_model.config import resolve_config
from din_model.config.resolve import BATCH_SIZE_RULES
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: The fewest optimisation steps an epoch should have (see the module docstring).
MIN_STEPS_PER_EPOCH = 500
#: The smallest batch the rule picks, however small the training split.
MIN_BATCH = 16


def steps_per_epoch(train_samples: int, batch_size: int) -> int:
    """Optimisation steps of one epoch: the last, smaller batch is a step too."""
    return math.ceil(train_samples / batch_size)


def auto_batch_size(
    train_samples: int,
    largest: int,
    *,
    min_steps: int = MIN_STEPS_PER_EPOCH,
    min_batch: int = MIN_BATCH,
) -> int:
    """The batch size of ``batch_size_rule: auto`` for ``train_samples`` rows.

    ``largest`` (the configured batch size) when an epoch of it already has
    ``min_steps`` steps; else the largest power of two below it that gives
    ``min_steps`` steps, but at least ``min_batch`` (or ``largest``, when that
    is smaller still). Applying the rule to its own result returns the result.
    """
    if train_samples < 1:
        raise ConfigError(f"the batch size rule needs training samples, got {train_samples}")
    if largest < 1:
        raise ConfigError(f"train.batch_size must be >= 1, got {largest}")
    if steps_per_epoch(train_samples, largest) >= min_steps:
        return largest
    # the largest power of two strictly below `largest`, halved until an epoch is long enough
    size = 1 << ((largest - 1).bit_length() - 1) if largest > 1 else 1
    while size > min_batch and steps_per_epoch(train_samples, size) < min_steps:
        size //= 2
    return min(largest, max(size, min_batch))


@dataclass(frozen=True)
class BatchChoice:
    """What the rule decided for one fit, for the log line and the tests."""

    rule: str
    configured: int
    batch_size: int
    train_samples: int

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.train_samples, self.batch_size)

    def describe(self) -> str:
        if self.rule == "fixed":
            text = (
                f"train.batch_size {self.batch_size} (fixed): {self.steps_per_epoch} steps per "
                f"epoch of {self.train_samples:,} training samples"
            )
            auto = auto_batch_size(self.train_samples, self.batch_size)
            if auto != self.batch_size:
                text += f" (train.batch_size_rule=auto would take {auto})"
            return text
        return (
            f"train.batch_size {self.batch_size} (auto, at most {self.configured}): "
            f"{self.steps_per_epoch} steps per epoch of {self.train_samples:,} training samples"
        )


def choose_batch_size(train: Mapping[str, Any], train_samples: int) -> BatchChoice:
    """Apply ``train.batch_size_rule`` of a resolved ``train`` section."""
    rule = str(train.get("batch_size_rule", "fixed"))
    if rule not in BATCH_SIZE_RULES:
        raise ConfigError(
            f"train.batch_size_rule: unknown '{rule}'; choose one of {', '.join(BATCH_SIZE_RULES)}"
        )
    configured = train["batch_size"]
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
        raise ConfigError(f"train.batch_size must be an integer >= 1, got {configured!r}")
    size = auto_batch_size(train_samples, configured) if rule == "auto" else configured
    return BatchChoice(rule, configured, size, train_samples)


def train_samples(data_dir: Path, feature_map: FeatureMap) -> int:
    """Rows of the prepared training split (feature_map.json records them; else the file)."""
    recorded = feature_map.splits.get("train")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    path = data_dir / "train.parquet"
    if not path.is_file():
        raise DataError(path, "a file of a `din prepare` output directory", got="no such file")
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def settle_batch_size(
    data_dir: str | Path, model: str, config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The resolved config of a fit of ``model`` on ``data_dir``, its batch size a number.

    ``config`` is what :func:`din_model.pipeline.fit` was given (partial or
    resolved). With ``batch_size_rule: auto`` the returned config holds the
    batch size the rule chose for this training split; it is the config the
    run records, hashes and trains with.
    """
    data_dir = Path(data_dir)
    feature_map = FeatureMap.load(data_dir / FEATURE_MAP_FILE)
    resolved = resolve_config(model, feature_map.dataset, layers=[config])  # a new dict
    train = resolved["train"]
    choice = choose_batch_size(train, train_samples(data_dir, feature_map))
    train["batch_size"] = choice.batch_size
    logger.info("%s", choice.describe())
    return resolved

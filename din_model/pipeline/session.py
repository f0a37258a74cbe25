"""One training run: its resolved config, data, model, optimizer and checkpoint files.

:func:`din_model.pipeline.fit` is a thin wrapper around :class:`TrainingRun`:
build it (config layers, tensors, seeded model, regulariser, optimizer),
optionally restore it from ``checkpoints/last.pt``, then run epochs until the
configured number or early stopping. Every finished epoch writes ``last.pt``;
an epoch that improves the validation metric also writes ``best.pt`` (before
``last.pt``, so a kill between the two only repeats that epoch on resume).

Under torchrun every rank builds the same run (same data, same seeded model)
and trains its shard (:mod:`din_model.distributed.trainer`); only rank 0
writes config.yaml and the checkpoints, and barriers keep the other ranks
from reading them before they are complete.

The output folder follows the rule of :mod:`din_model.io.output_dir`
(:func:`claim_train_output`): new or empty, or our own ``din train`` output.
An unfinished one (marker and checkpoints, no ``metrics.json``) is resumed;
a finished one is replaced only with ``force``; any other folder is refused.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from din_model.config import config_hash, dump_config, resolve_config
from din_model.data.encoding.vocabulary import VOCAB_DIR
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.distributed import group as distributed
from din_model.distributed.trainer import make_trainer
from din_model.errors import ConfigError, DataError
from din_model.io.atomic import atomic_output_file
from din_model.io.failures import writing
from din_model.io.fingerprint import fingerprint_files
from din_model.io.output_dir import MARKER, Claim, claim_output_dir, write_marker
from din_model.models import build_model
from din_model.pipeline.layout import (
    ATTENTION_FILE,
    CONFIG_FILE,
    ITEM_MAP_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SERVING_DIR,
)
from din_model.regularizers import build_regularizer
from din_model.tensors.split import load_prepared_split
from din_model.training.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from din_model.training.device import configure_cpu, resolve_device, wants_data_on_device
from din_model.training.optim import make_optimizer, make_scheduler
from din_model.training.seed import (
    make_deterministic,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from din_model.training.trainer import MONITORS, TrainingState, is_improvement
from din_model.training.warm_start import WarmStartSource, warm_start

logger = logging.getLogger(__name__)

TRAIN_COMMAND = "train"
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class FitResult:
    """Outcome of :func:`din_model.pipeline.fit`: the chosen checkpoint and the history."""

    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_epoch: int
    valid_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    config: dict[str, Any]
    model: str
    regularizer: str
    dataset: str
    stopped_early: bool
    resumed_from_epoch: int | None
    prepared_fingerprint: str
    warm_start: dict[str, Any] | None = None  # WarmStartReport.as_dict() of a warm-started run


def prepared_fingerprint(data_dir: Path, splits: tuple[str, ...]) -> str:
    """Identity of the prepared files a run reads (resuming on other data is refused)."""
    files = [data_dir / FEATURE_MAP_FILE] + [data_dir / f"{s}.parquet" for s in splits]
    for path in files:
        if not path.is_file():
            raise DataError(path, "a file of a `din prepare` output directory", got="no such file")
    return fingerprint_files(files, root=data_dir)


def is_unfinished(out_dir: Path) -> bool:
    """A ``din train`` output without its final metrics: a run that can be resumed."""
    return not (out_dir / METRICS_FILE).exists()


def claim_train_output(out_dir: Path, data_dir: Path, *, force: bool = False) -> Claim:
    """Check ``out_dir`` on every rank before any rank writes there (see the module doc)."""
    claim = claim_output_dir(
        out_dir, command=TRAIN_COMMAND, force=force, sources=[data_dir], resumable=is_unfinished
    )
    distributed.barrier()  # every rank has looked before rank 0 changes anything
    return claim


def _check_train_config(train: dict[str, Any]) -> None:
    if str(train.get("monitor")) not in MONITORS:
        raise ConfigError(
            f"train.monitor: unknown '{train.get('monitor')}'; choose one of {', '.join(MONITORS)}"
        )
    if int(train["epochs"]) < 1:
        raise ConfigError(f"train.epochs must be >= 1, got {train['epochs']}")


class TrainingRun:
    """Everything one fit needs, built in a fixed, seeded order."""

    def __init__(
        self,
        data_dir: Path,
        out_dir: Path,
        model: str,
        regularizer: str | None,
        config: dict[str, Any] | None,
        *,
        warm_start_from: WarmStartSource | None = None,
    ) -> None:
        self.data_dir, self.out_dir, self.model_name = data_dir, out_dir, model
        # applied by run() before epoch 1 of a run that did not restore a checkpoint
        self.warm_start_from = warm_start_from
        self.warm_start: dict[str, Any] | None = None
        self.feature_map = FeatureMap.load(data_dir / FEATURE_MAP_FILE)
        self.config = resolve_config(model, self.feature_map.dataset, layers=[config])
        if regularizer is not None:
            self.config["regularizer"]["name"] = regularizer
        self.regularizer_name = str(self.config["regularizer"]["name"])
        self.train_config = train = self.config["train"]
        _check_train_config(train)
        self.regularizer = build_regularizer(self.regularizer_name, self.config["regularizer"])
        self.device = distributed.rank_device(resolve_device(train["device"]))
        configure_cpu(train, self.device)
        self.config_hash = config_hash(self.config)
        self.fingerprint = prepared_fingerprint(data_dir, ("train", "valid"))

        self.train = load_prepared_split(data_dir, "train", self.feature_map, train["max_len"])
        self.valid = load_prepared_split(data_dir, "valid", self.feature_map, train["max_len"])
        for split in (self.train, self.valid):
            if len(split) == 0:
                raise DataError(split.path, "at least one row", got="an empty split")

        seed_everything(int(train["seed"]))
        make_deterministic(self.device)
        self.net = build_model(model, self.feature_map, self.config["model"]).to(self.device)
        self.regularizer.prepare(self.train, self.feature_map, self.net)
        self.regularizer.to(self.device)
        self.optimizer = make_optimizer(self.net, train)
        self.scheduler = make_scheduler(self.optimizer, train)
        self.state = TrainingState()
        self.resumed_from: int | None = None
        self.last_path, self.best_path = checkpoint_paths(out_dir)

    # -- output directory ------------------------------------------------------
    def clear_outputs(self, *, everything: bool = False) -> None:
        """Forget a previous run in ``out_dir`` (its checkpoints, metrics, predictions).

        ``everything`` empties the folder (an earlier output of ours replaced
        with ``force``); the marker goes last, so an interruption never leaves
        files of ours without it.
        """
        if distributed.is_main_process():
            with writing(self.out_dir):
                for name in (METRICS_FILE, PREDICTIONS_FILE, ATTENTION_FILE, ITEM_MAP_FILE):
                    (self.out_dir / name).unlink(missing_ok=True)
                shutil.rmtree(self.last_path.parent, ignore_errors=True)
                shutil.rmtree(self.out_dir / SERVING_DIR, ignore_errors=True)
                if everything:
                    for entry in self.out_dir.iterdir():
                        if entry.name == MARKER:
                            continue
                        if entry.is_dir() and not entry.is_symlink():
                            shutil.rmtree(entry)
                        else:
                            entry.unlink()
                    (self.out_dir / MARKER).unlink(missing_ok=True)
        distributed.barrier()  # no rank may see the old files after this

    def write_config(self) -> None:
        """Our marker (unless there) and the resolved config as ``config.yaml``."""
        if not distributed.is_main_process():
            return
        header = (
            f"din train --model {self.model_name} --reg {self.regularizer_name} "
            f"--data {self.data_dir}\nconfig hash {self.config_hash}"
        )
        warm_from = self._warm_start_checkpoint()
        if warm_from is not None:
            # a comment, not a config key: see _warm_start_checkpoint
            header += f"\nwarm start: {warm_from} (not part of the config hash)"
        with writing(self.out_dir):
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not (self.out_dir / MARKER).is_file():
                write_marker(self.out_dir, TRAIN_COMMAND)  # before any checkpoint: resumable
            with atomic_output_file(self.out_dir / CONFIG_FILE) as tmp:
                tmp.write_text(dump_config(self.config, header=header))

    # -- checkpoints -----------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "regularizer_name": self.regularizer_name,
            "config": self.config,
            "config_hash": self.config_hash,
            "feature_map": self.feature_map.to_dict(),
            "prepared_fingerprint": self.fingerprint,
            "warm_start": self.warm_start,
        }

    def _warm_start_checkpoint(self) -> str | None:
        """The champion checkpoint this run started from (to be), or None for a cold start.

        Recorded in config.yaml's header, in both checkpoints and in metrics.json, but not
        as a config key: the config hash decides whether a checkpoint may be resumed, and
        a champion's path is where a flow happened to download it (another temporary folder
        on every attempt), so a resumed retrain would be refused; and ``din rerun`` reads
        config.yaml back, where an unknown ``train`` key is a ConfigError.
        """
        if self.warm_start is not None:
            return str(self.warm_start["checkpoint"])
        if self.warm_start_from is not None and self.resumed_from is None:
            return str(self.warm_start_from.checkpoint)
        return None

    def apply_warm_start(self) -> None:
        """Start from the champion's weights: once, before epoch 1, never over a restored run."""
        if self.warm_start_from is None or self.resumed_from is not None or self.state.epoch:
            return
        report = warm_start(self.net, self.feature_map, self.warm_start_from,
                            vocab_dir=self.data_dir / VOCAB_DIR)  # fmt: skip
        self.warm_start = report.as_dict()

    def restore(self) -> bool:
        """Continue from ``last.pt`` when there is one; refuse one of another run."""
        # a collective, so rank 0 has finished any earlier write of last.pt
        exists = self.last_path.is_file()
        if not distributed.same_on_every_rank(exists):
            raise ConfigError(
                f"{self.last_path}: visible to some processes only; with several nodes --out "
                "must be on a filesystem that every node shares"
            )
        if not exists:
            return False
        saved = load_checkpoint(self.last_path)
        mismatch = [
            what
            for what, mine, theirs in (
                ("model", self.model_name, saved.get("model_name")),
                ("config", self.config_hash, saved.get("config_hash")),
                ("data", self.fingerprint, saved.get("prepared_fingerprint")),
            )
            if mine != theirs
        ]
        if mismatch:
            raise ConfigError(
                f"{self.last_path}: a checkpoint of a run with another {' and '.join(mismatch)}; "
                "choose another output directory or start over (din train --restart)"
            )
        self.net.load_state_dict(saved["model_state"])
        self.optimizer.load_state_dict(saved["optimizer_state"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler_state"])
        self.regularizer.load_state_dict(saved.get("regularizer_state") or {})
        self.state = TrainingState.from_dict(saved["training_state"])
        restore_rng_state(saved["rng_state"])
        self.resumed_from = self.state.epoch
        self.warm_start = saved.get("warm_start")
        logger.info("resuming from %s (epoch %d done)", self.last_path, self.state.epoch)
        if self.warm_start_from is not None:
            logger.info(
                "warm start not applied again: the restored weights %s",
                "include it" if self.warm_start is not None else "are of a run started cold",
            )
        return True

    def _save_best(self, valid_metrics: dict[str, Any]) -> None:
        if not distributed.is_main_process():  # the ranks hold the same model
            return
        save_checkpoint(
            self.best_path,
            {
                **self._identity(),
                "kind": "model",
                "epoch": self.state.epoch,
                "valid_metrics": valid_metrics,
                "model_state": self.net.state_dict(),
                "regularizer_state": self.regularizer.state_dict(),
            },
        )

    def _save_last(self) -> None:
        if not distributed.is_main_process():
            return
        save_checkpoint(
            self.last_path,
            {
                **self._identity(),
                "kind": "training",
                "model_state": self.net.state_dict(),
                "optimizer_state": self.optimizer.state_dict(),
                "scheduler_state": self.scheduler.state_dict() if self.scheduler else None,
                "regularizer_state": self.regularizer.state_dict(),
                "training_state": self.state.to_dict(),
                "rng_state": rng_state(),
            },
        )

    # -- the epoch loop ----------------------------------------------------------
    def run(self, on_epoch_end: EpochCallback | None = None) -> None:
        """Train until the configured epochs or early stopping."""
        self.apply_warm_start()
        train_cfg = self.train_config
        train, valid = self.train, self.valid
        if wants_data_on_device(train_cfg, self.device):
            train, valid = train.to(self.device), valid.to(self.device)
        trainer = make_trainer(self.net, self.regularizer, self.optimizer, train_cfg, self.device)
        epochs = int(train_cfg["epochs"])
        patience = int(train_cfg.get("early_stopping_patience") or 0)
        monitor = str(train_cfg["monitor"])
        n_params = sum(p.numel() for p in self.net.parameters())
        logger.info(
            "training %s (%s) on %s: %d train / %d valid samples, %s parameters, device %s",
            self.model_name,
            self.regularizer.describe(),
            self.data_dir,
            len(train),
            len(valid),
            f"{n_params:,}",
            self.device,
        )
        state = self.state
        while not state.completed and state.epoch < epochs:
            epoch = state.epoch + 1
            stats = trainer.train_epoch(train, epoch, epochs)
            valid_metrics = trainer.validate(valid)
            record = {
                "epoch": epoch,
                **stats,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                **{f"valid_{k}": v for k, v in valid_metrics.items() if k != "n"},
            }
            state.history.append(record)
            state.epoch = epoch
            value = float(valid_metrics[monitor])
            if is_improvement(value, state.best_value, monitor):
                state.best_epoch, state.best_value = epoch, value
                state.best_metrics = dict(valid_metrics)
                state.epochs_without_improvement = 0
                self._save_best(valid_metrics)
            else:
                state.epochs_without_improvement += 1
            if self.scheduler is not None:
                self.scheduler.step()
            state.stopped_early = 0 < patience <= state.epochs_without_improvement
            state.completed = state.stopped_early or epoch >= epochs
            self._save_last()
            _log_epoch(record, epochs, best=state.best_epoch == epoch)
            if on_epoch_end is not None:
                on_epoch_end(dict(record))
        if state.stopped_early:
            logger.info(
                "early stop: no better validation %s for %d epochs (best: epoch %d)",
                monitor,
                state.epochs_without_improvement,
                state.best_epoch,
            )
        distributed.barrier()  # rank 0's checkpoints are on disk before any rank reads them

    def result(self) -> FitResult:
        state = self.state
        assert state.best_epoch is not None and state.best_metrics is not None
        return FitResult(
            out_dir=self.out_dir,
            best_checkpoint=self.best_path,
            last_checkpoint=self.last_path,
            best_epoch=state.best_epoch,
            valid_metrics=state.best_metrics,
            history=state.history,
            config=self.config,
            model=self.model_name,
            regularizer=self.regularizer_name,
            dataset=self.feature_map.dataset,
            stopped_early=state.stopped_early,
            resumed_from_epoch=self.resumed_from,
            prepared_fingerprint=self.fingerprint,
            warm_start=self.warm_start,
        )


def _log_epoch(record: dict[str, Any], epochs: int, *, best: bool) -> None:
    logger.info(
        "epoch %d/%d: loss %.4f | valid AUC %.4f GAUC %.4f (%d users) LogLoss %.4f | "
        "%.0f samples/s%s",
        record["epoch"],
        epochs,
        record["train_loss"],
        record["valid_auc"],
        record["valid_gauc"],
        record["valid_gauc_users"],
        record["valid_logloss"],
        record["samples_per_s"],
        " | best" if best else "",
    )

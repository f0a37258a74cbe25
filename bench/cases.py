"""The cases a benchmark run measures, for each mode (quick | full) and device.

A case names a dataset, a model, a batch size and the config it trains with.
Every case trains one whole epoch of its train split and scores the whole
validation split (``train_rows`` / ``infer_rows`` can cut them, e.g. for
tests); on the 2-core CPU the full harness takes about 4-5 minutes when the
machine is otherwise idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The MovieLens configuration: item and category embeddings 64, history 50,
# at the Amazon cases' batch sizes (1024, 4096) plus 256, DeepCTR's default.
MOVIELENS_OVERRIDES = ("model.embedding_dim=64", "train.max_len=50")
# DIN paper preset (din_model/configs/presets/paper.yaml): 64 + 64, history up to 100.
PAPER_PRESET = "paper"


@dataclass(frozen=True)
class TrainCase:
    """One training + inference measurement."""

    name: str
    dataset: str  # key of a prepared dataset of the run (see Plan.datasets)
    model: str
    batch: int
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    train_rows: int | None = None  # None: the whole train split
    infer_rows: int | None = None  # None: the whole valid split
    warmup_batches: int = 8


@dataclass(frozen=True)
class DataSpec:
    """A prepared dataset: ``din synth amazon --scale`` + prepare, or a real source."""

    key: str
    dataset: str
    scale: float | None = None  # synthetic Amazon at this scale
    source: str | None = None  # real data directory
    timed: bool = False  # report the prepare step as a result of its own


@dataclass
class Plan:
    datasets: list[DataSpec]
    cases: list[TrainCase] = field(default_factory=list)


def _amazon_cases(key: str, gpu: bool) -> list[TrainCase]:
    warmup = 30 if gpu else 4
    cases = []
    for model in ("din_dice", "base"):
        for batch in (1024, 4096):
            cases.append(
                TrainCase(
                    name=f"{key}/{model}/b{batch}",
                    dataset=key,
                    model=model,
                    batch=batch,
                    preset=PAPER_PRESET,
                    warmup_batches=warmup,
                )
            )
    return cases


def _movielens_cases(gpu: bool, batches: tuple[int, ...]) -> list[TrainCase]:
    cases = []
    for model in ("din", "base"):
        for batch in batches:
            cases.append(
                TrainCase(
                    name=f"movielens-100k/{model}/b{batch}",
                    dataset="movielens-100k",
                    model=model,
                    batch=batch,
                    overrides=MOVIELENS_OVERRIDES,
                    warmup_batches=30 if gpu else 8,
                )
            )
    return cases


def build_plan(*, quick: bool, gpu: bool, movielens_source: str | None) -> Plan:
    """The datasets and cases of a run."""
    datasets: list[DataSpec] = []
    cases: list[TrainCase] = []
    if movielens_source is not None:
        datasets.append(DataSpec("movielens-100k", "movielens", source=movielens_source))
        cases += _movielens_cases(gpu, (256,) if quick else (256, 1024, 4096))
    if quick:
        datasets.append(DataSpec("amazon-synth-0.02", "amazon", scale=0.02, timed=True))
        cases.append(
            TrainCase(
                name="amazon-synth-0.02/din_dice/b1024",
                dataset="amazon-synth-0.02",
                model="din_dice",
                batch=1024,
                preset=PAPER_PRESET,
                warmup_batches=30 if gpu else 4,
            )
        )
    else:
        datasets.append(DataSpec("amazon-synth-1.0", "amazon", scale=1.0, timed=True))
        cases += _amazon_cases("amazon-synth-1.0", gpu)
    return Plan(datasets, cases)

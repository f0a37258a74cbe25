"""Where a model's tuned configuration lives, so ``din tune`` and ``din ablation --tuned`` agree.

``din tune`` writes the best trial's configuration as a YAML file that
``din train --config`` accepts; ``din ablation --tuned`` looks each model up
at the same place. Tuning is per model and dataset: a regularised cell
(DIN + MBA, say) takes its model's tuned file and adds the regulariser.
"""

from __future__ import annotations

from pathlib import Path

TUNED_DIR = "tuned"


def tuned_config_path(root: str | Path, dataset: str, model: str) -> Path:
    """``<root>/tuned/<dataset>/<model>.yaml``; ``root`` is the pipeline's work folder."""
    return Path(root) / TUNED_DIR / dataset / f"{model}.yaml"


def find_tuned_config(root: str | Path, dataset: str, model: str) -> Path:
    """The tuned file of ``model`` on ``dataset``, or a one-line error saying how to make it."""
    path = tuned_config_path(root, dataset, model)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no tuned config for {model} on {dataset}; "
            f"run `din tune --dataset {dataset} --model {model}` first"
        )
    return path

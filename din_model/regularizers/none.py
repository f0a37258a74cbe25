"""No regularisation: the paper's baseline row."""

from __future__ import annotations

from din_model.regularizers.base import Regularizer


class NoRegularizer(Regularizer):
    name = "none"

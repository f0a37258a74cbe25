"""The names users type on the command line, kept free of heavy imports.

Argument parsers need these lists to build ``--help``; importing them from the
model or regulariser packages would load torch for every ``din`` command.
The registries in :mod:`din_model.models` and :mod:`din_model.regularizers`
are checked against these lists by the tests.
"""

DATASETS = ("amazon", "movielens", "taobao")
MODEL_NAMES = ("lr", "base", "wide_deep", "pnn", "deepfm", "din", "din_dice")
# models with a local activation unit, whose runs get the attention-weights plot
ATTENTION_MODELS = ("din", "din_dice")
REGULARIZER_NAMES = ("none", "l2", "dropout", "filter", "difacto", "mba")

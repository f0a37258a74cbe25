"""The regulariser names users type (``--reg``), kept free of torch for argument parsers.

The classes live in :mod:`din_model.regularizers` (one per module, built by name);
a test checks that they are exactly these names, in this order.
"""

REGULARIZER_NAMES = ("none", "l2", "dropout", "filter", "difacto", "mba")

"""Stage 1, raw: where each data set's files come from (owner downloads, synthetic generators)."""

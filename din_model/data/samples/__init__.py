"""Stage 5, samples: protocol output -> the prepared splits written by ``din prepare``."""

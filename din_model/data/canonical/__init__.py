"""Stage 2, canonical: the tables every adapter produces, their storage and derived context."""

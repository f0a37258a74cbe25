"""din_model package."""

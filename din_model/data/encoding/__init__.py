"""Stage 3, encoding: canonical values -> integer ids (vocabularies or hashed tables)."""

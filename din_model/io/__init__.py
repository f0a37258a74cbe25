"""Small I/O helpers shared by every stage: atomic writes and fingerprints."""

"""Pipeline sub-commands of ``din``; each module defines ``register(subparsers)``."""

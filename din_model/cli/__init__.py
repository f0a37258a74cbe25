"""Sub-commands of ``din`` that need only din_model (no Prefect, no MLflow).

Each module in this package that defines ``register(subparsers)`` adds one
sub-command; :func:`register_all` finds them, so a new command is one new
module. ``python -m din_model.cli`` runs these commands without the pipeline.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from types import ModuleType


def command_modules(package: str) -> list[ModuleType]:
    """Import every public module of ``package`` that defines ``register``."""
    root = importlib.import_module(package)
    modules = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return modules


def register_all(subparsers: argparse._SubParsersAction, package: str = __name__) -> None:
    for module in command_modules(package):
        module.register(subparsers)

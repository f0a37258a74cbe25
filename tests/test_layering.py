"""The package layout is a one-way stack: no module imports a stage that comes after it.

The folders of ``din_model`` follow the order data flows in (raw -> canonical ->
samples -> tensors -> model -> metrics), and each package may import only from
its own layer or from layers below it. Reading the imports from the source (with
``ast``, nothing is executed) keeps the rule checked on every change: an import
that runs back up, like regularisers reaching into training or the data stage
importing validation, fails here with the file and line.

``din_model`` imports neither Prefect nor MLflow (it is the plain library that
``tasks/`` wraps), and ``tasks/`` never imports ``flows/``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Lowest first. A module may import its own layer and every layer before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "io"),
    ("registry", "config"),
    ("data.canonical", "data.specs"),  # the contracts: canonical schema, feature map
    ("data.readers", "data.sources"),  # raw files
    ("data.adapters",),  # raw -> canonical
    ("data.encoding",),  # canonical -> ids
    ("data.protocols",),  # ids -> sample index
    ("data.samples",),  # sample index -> prepared splits
    ("validation",),  # Great Expectations over canonical tables and samples
    ("layers",),
    ("tensors",),  # prepared split -> tensors and batches
    ("metrics",),
    ("models", "regularizers"),
    ("training",),  # the plain epoch loop, scoring, checkpoints
    ("distributed",),  # process groups around training
    ("serving",),  # a checkpoint as a scorer
    ("pipeline",),  # prepare, fit-and-score: the composed stages
    ("tuning",),  # search spaces and the Optuna study over fit
    ("cli",),
)
FORBIDDEN_IN_LIBRARY = ("prefect", "mlflow", "tasks", "flows")


def _layer_of(module: str) -> int | None:
    """Index in LAYERS of a ``din_model`` module (longest matching package wins)."""
    parts = module.split(".")[1:]
    best: tuple[int, int] | None = None
    for index, names in enumerate(LAYERS):
        for name in names:
            prefix = name.split(".")
            if parts[: len(prefix)] == prefix and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, function-level ones included."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from din_model.data import context` names a module
                yield node.lineno, f"{module}.{alias.name}"


def _library_files() -> list[Path]:
    return sorted((REPO / "din_model").rglob("*.py"))


def test_every_library_package_has_a_layer() -> None:
    """Every module is placed (a package folder with only a docstring holds no stage's code)."""
    unplaced = sorted(
        _module_name(path)
        for path in _library_files()
        if _module_name(path).count(".") >= 1
        and _layer_of(_module_name(path)) is None
        and not (path.name == "__init__.py" and not any(_imports(path)))
    )
    assert not unplaced, f"add these to LAYERS: {unplaced}"


def test_no_import_runs_back_up() -> None:
    upward = []
    for path in _library_files():
        own = _layer_of(_module_name(path))
        for line, module in _imports(path):
            target = _layer_of(module) if module.startswith("din_model.") else None
            where = f"{path.relative_to(REPO)}:{line}"
            runs_up = own is not None and target is not None and target > own
            if runs_up and not (upward and upward[-1].startswith(where + " ")):  # once per line
                upward.append(f"{where} imports {module}")
    assert not upward, "\n".join(upward)


def test_the_library_imports_no_orchestration_or_tracking() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _library_files()
        for line, module in _imports(path)
        if module.split(".")[0] in FORBIDDEN_IN_LIBRARY
    ]
    assert not bad, "\n".join(bad)


def test_tasks_never_import_flows() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / "tasks").rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] == "flows"
    ]
    assert not bad, "\n".join(bad)


def test_building_the_din_parser_loads_no_torch_prefect_or_mlflow() -> None:
    """``din --help`` and every command's choices (read from the registries) start fast."""
    probe = (
        "import sys\n"
        "from din_model.cli._main import build_parser\n"
        "from flows.cli import COMMAND_PACKAGES\n"
        "build_parser(COMMAND_PACKAGES)\n"
        "print(sorted(m for m in ('torch', 'prefect', 'mlflow') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr

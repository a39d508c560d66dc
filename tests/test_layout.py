"""The layer rule of the README's "Layout" section, read from the code: every import of every module (at the top
or inside a function) points down, never up.

    core  <  data  <  extractors, model  <  pipeline  <  commands, cli.py, demo

and inside pipeline/, a subpackage imports only those before it in pipeline.ORDER. Nothing of the project does
work at import time that the tests could see: importing every package starts no process and sets no variable.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"core": 0, "data": 1, "extractors": 2, "model": 2, "pipeline": 3, "commands": 4, "cli": 5, "demo": 5}
PACKAGES = ("core", "data", "extractors", "model", "pipeline", "commands", "demo")


def _modules() -> list[tuple[str, Path]]:
    out = [("cli", ROOT / "cli.py")]
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of the project's packages in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.split(".")[0] in LAYERS]


def _pipeline_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "pipeline" and len(parts) > 1 else None


def _violations(modules: list[tuple[str, Path]]) -> list[str]:
    """Every import in `modules` ((dotted name, file) each) that points up a layer, or sideways between two
    packages of one layer, or to a later pipeline subpackage."""
    from pipeline import ORDER

    wrong = []
    for module, path in modules:
        layer, part = LAYERS[module.split(".")[0]], _pipeline_part(module)
        for line, target in _imports(path):
            top = target.split(".")[0]
            where = f"{path.name}:{line} imports {target}"
            if LAYERS[top] > layer or (LAYERS[top] == layer and top != module.split(".")[0]):
                wrong.append(f"{where}: {top} is not below {module.split('.')[0]}")
            elif part is not None and _pipeline_part(target) is not None and _pipeline_part(target) != part:
                other = _pipeline_part(target)
                if other not in ORDER or part not in ORDER or ORDER.index(other) > ORDER.index(part):
                    wrong.append(f"{where}: pipeline.{other} comes after pipeline.{part} in pipeline.ORDER")
    return wrong


def test_imports_point_down_the_layers():
    wrong = _violations(_modules())
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_imports_that_point_up(tmp_path):
    """The check itself can fail: an import inside a function counts, and so does one between pipeline subpackages."""
    up = tmp_path / "up.py"
    up.write_text("def f():\n    from pipeline.prediction.predict import Predictor\n")
    side = tmp_path / "side.py"
    side.write_text("from model.network import MultilogueNet\n")
    later = tmp_path / "later.py"
    later.write_text("from pipeline.serving.app import create_app\n")
    assert len(_violations([("data.up", up), ("extractors.side", side), ("pipeline.prediction.later", later)])) == 3
    assert _violations([("pipeline.serving.ok", later.with_name("up.py"))]) == []


def test_every_pipeline_subpackage_is_in_the_order_and_says_what_it_owns():
    from pipeline import ORDER

    found = sorted(p.stem if p.is_file() else p.name for p in (ROOT / "pipeline").iterdir()
                   if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__"))
    assert sorted(ORDER) == found
    for name in ORDER:
        init = ROOT / "pipeline" / name / "__init__.py"
        doc = ast.get_docstring(ast.parse((init if init.exists() else ROOT / "pipeline" / f"{name}.py").read_text()))
        assert doc and "import" in doc, f"pipeline.{name} must say what it owns and what it may import"


def test_the_readme_states_the_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    from pipeline import ORDER

    assert "core < data < extractors, model < pipeline < commands" in section
    assert " < ".join(ORDER) in section


@pytest.mark.parametrize("package", PACKAGES + ("cli",))
def test_importing_does_no_work(package):
    """Importing a package leaves the environment as it was and starts no process (the fork server, Ray and the
    models start when a command runs)."""
    probe = ("import os, sys, multiprocessing; before = dict(os.environ); "
             f"import {package}; "
             "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items()); "
             "assert not multiprocessing.active_children(); print('ok')")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]

"""The Docker-free function asset: layout, configuration file, pip flags and the cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from functions.core.config import DEFAULT_CONFIG_NAME, load_settings_file
from infra import bundling
from tests.infra.synth import ROOT

SETTINGS = load_settings_file(ROOT / "config" / "autopilot.example.yaml")


def test_the_asset_holds_dependencies_the_functions_package_and_the_configuration(tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    (deps / "somelib").mkdir(parents=True)
    (deps / "somelib" / "__init__.py").write_text("")
    out = tmp_path / "asset"
    out.mkdir()
    bundling.build_asset(out, SETTINGS, deps)
    assert (out / "somelib" / "__init__.py").exists()
    assert (out / "functions" / "catalog.py").exists()
    assert not list(out.rglob("__pycache__"))
    written = json.loads((out / DEFAULT_CONFIG_NAME).read_text())
    assert written == SETTINGS.model_dump(mode="json")
    # The steps read it back exactly as get_settings() does in Lambda.
    assert load_settings_file(out / DEFAULT_CONFIG_NAME) == SETTINGS


def test_pip_fetches_lambda_platform_wheels_only() -> None:
    command = bundling.pip_command(Path("/out"))
    assert "--only-binary=:all:" in command
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"]
    assert command[command.index("--python-version") + 1] == "3.13"
    assert command[command.index("--implementation") + 1] == "cp"


def test_the_runtime_and_the_wheels_agree() -> None:
    from infra.step_lambda import RUNTIME

    assert RUNTIME.name == f"python{bundling.PYTHON_VERSION}"


def test_a_cached_dependency_set_is_reused_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("example==1.0\n")
    cached = tmp_path / "cache" / bundling.dependencies_key(requirements)
    cached.mkdir(parents=True)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the cache holds this requirements set")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert bundling.ensure_dependencies(requirements, tmp_path / "cache") == cached


def test_a_failed_pip_leaves_no_half_built_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("example==1.0\n")
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout="", stderr="no such wheel"),
    )
    with pytest.raises(RuntimeError, match="no such wheel"):
        bundling.ensure_dependencies(requirements, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_asset_hash_changes_with_the_configuration() -> None:
    changed = SETTINGS.model_copy(update={"environment": "staging"})
    assert bundling.config_json(changed) != bundling.config_json(SETTINGS)


@pytest.mark.skipif(
    not (bundling.CACHE_DIR / bundling.dependencies_key()).is_dir(),
    reason="no Lambda wheels fetched yet (make synth or python -m infra.bundling fetches them)",
)
def test_the_fetched_wheels_are_for_lambda_arm64_python_3_13() -> None:
    deps = bundling.CACHE_DIR / bundling.dependencies_key()
    extensions = [p.name for p in deps.rglob("*.so")]
    assert any(name.startswith("_pydantic_core.cpython-313-aarch64-linux-gnu") for name in extensions)
    assert (deps / "psycopg_binary").is_dir()
    assert not [name for name in extensions if "x86_64" in name or "cpython-311" in name]

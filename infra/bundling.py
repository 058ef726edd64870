"""The function asset, built without Docker: Lambda-platform wheels fetched by pip, the ``functions``
package, and the validated configuration as ``autopilot_config.json`` at the asset root.

pip's output is cached under ``.cache/lambda-deps/<hash of requirements and platform>`` so only the first
synth on a machine (or a change of requirements.txt) reaches the package index.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from functions.core.config import DEFAULT_CONFIG_NAME, Settings

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
FUNCTIONS_DIR = ROOT / "functions"
CACHE_DIR = ROOT / ".cache" / "lambda-deps"

PYTHON_VERSION = "3.13"  # the Lambda runtime; keep in step with infra.step_lambda.RUNTIME
# Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34): every manylinux tag up to 2_34 loads there.
# psycopg-binary 3.3 ships only manylinux_2_28 wheels, so manylinux2014 alone does not resolve.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--disable-pip-version-check",
    ]
    command += ["-r", str(requirements), "--target", str(target), "--only-binary=:all:"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return [*command, "--implementation", "cp", "--python-version", PYTHON_VERSION]


def dependencies_key(requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(json.dumps([PLATFORMS, PYTHON_VERSION]).encode())
    return digest.hexdigest()[:16]


def ensure_dependencies(requirements: Path = REQUIREMENTS, cache_dir: Path = CACHE_DIR) -> Path:
    """The pip-installed requirements for the Lambda platform, built once per requirements.txt."""
    done = cache_dir / dependencies_key(requirements)
    if done.is_dir():
        return done
    cache_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="building-", dir=cache_dir))
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and pip, fixed arguments
            pip_command(building, requirements), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"pip could not fetch the Lambda dependencies:\n{result.stderr[-3000:]}")
        building.rename(done)  # atomic: a half-built directory is never taken for a cached one
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return done


def tree_digest(root: Path) -> str:
    """A hash of the files under ``root`` (names and contents), byte caches excluded."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def config_json(settings: Settings) -> str:
    return json.dumps(settings.model_dump(mode="json"), indent=1, sort_keys=True)


def build_asset(output_dir: Path, settings: Settings, dependencies: Path) -> None:
    """Lay out the asset: dependencies, then ``functions/``, then the configuration file."""
    shutil.copytree(dependencies, output_dir, dirs_exist_ok=True, ignore=_IGNORE)
    shutil.copytree(FUNCTIONS_DIR, output_dir / "functions", dirs_exist_ok=True, ignore=_IGNORE)
    (output_dir / DEFAULT_CONFIG_NAME).write_text(config_json(settings), encoding="utf-8")


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundling:
    """Bundles on this machine; CDK never falls back to Docker because this always answers True or raises."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        # jsii passes the BundlingOptions positionally; they hold nothing this bundler uses.
        build_asset(Path(output_dir), self._settings, ensure_dependencies())
        return True


def function_code(settings: Settings) -> lambda_.Code:
    """The one asset every step function runs from; its hash covers dependencies, code and configuration."""
    digest = hashlib.sha256()
    for part in (dependencies_key(), tree_digest(FUNCTIONS_DIR), config_json(settings)):
        digest.update(part.encode())
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=digest.hexdigest(),
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or fails loudly.
            image=cdk.DockerImage.from_registry("local-bundling-only"),
            local=PipLocalBundling(settings),
        ),
    )


if __name__ == "__main__":
    # `python -m infra.bundling`: fetch the Lambda wheels now (make install), so later synths run offline.
    print(ensure_dependencies())

"""CDK synth time, and each function asset's size zipped and unzipped.

Runs ``app.py`` in a fresh interpreter, as ``make synth`` does: once with bundling skipped (what the infra tests
synthesize) and once with the real Docker-free bundling (pip cache warm unless ``--cold``, which empties
.cache/lambda-deps first and so needs the package index). The asset is zipped here with deflate, as the CDK
CLI uploads it. Writes bench/results/synth.json.

    .venv/bin/python bench/synth.py [--repeat 1] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.bundling import CACHE_DIR, dependencies_key  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "synth.json"
STACK = "RunbookAutopilot"


def synth(out: Path, *, bundle: bool) -> float:
    """Seconds for one ``python app.py`` into ``out``."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "-o", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"synth failed:\n{result.stderr.strip()[-3000:]}")
    return seconds


def asset_sizes(out: Path) -> list[dict[str, Any]]:
    """Every file asset of the stack: files, bytes on disk, bytes zipped, and the functions using it."""
    manifest = json.loads((out / f"{STACK}.assets.json").read_text())
    template = json.loads((out / f"{STACK}.template.json").read_text())
    rows = []
    for asset_hash, asset in manifest.get("files", {}).items():
        path = out / asset["source"]["path"]
        if not path.is_dir():
            continue
        files = [p for p in path.rglob("*") if p.is_file()]
        unzipped = sum(p.stat().st_size for p in files)
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "asset.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
                for p in files:
                    zipped.write(p, p.relative_to(path))
            zipped_bytes = archive.stat().st_size
        users = [
            key
            for key, res in template["Resources"].items()
            if res["Type"] == "AWS::Lambda::Function"
            and asset_hash in json.dumps(res["Properties"].get("Code", {}))
        ]
        rows.append(
            {
                "asset": asset_hash[:12],
                "files": len(files),
                "unzipped_mib": round(unzipped / 2**20, 1),
                "zipped_mib": round(zipped_bytes / 2**20, 1),
                "functions": len(users),
                "lambda_limits_mib": {"unzipped": 250, "zipped_direct_upload": 50},
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CDK synth time and function asset sizes.")
    parser.add_argument("--repeat", type=int, default=1, help="synths of each kind (the fastest is reported)")
    parser.add_argument("--cold", action="store_true", help="empty the pip cache first (needs the network)")
    args = parser.parse_args(argv)

    if args.cold:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
    warm = (CACHE_DIR / dependencies_key()).is_dir()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        skipped = min(synth(Path(tmp) / f"skip{i}", bundle=False) for i in range(args.repeat))
        print(f"  synth, bundling skipped: {skipped:.1f} s", file=sys.stderr, flush=True)
        first = synth(Path(tmp) / "bundled0", bundle=True)
        bundled = min(
            [first] + [synth(Path(tmp) / f"bundled{i}", bundle=True) for i in range(1, args.repeat)]
        )
        print(f"  synth, bundled (pip cache {'warm' if warm else 'cold'}): {first:.1f} s", file=sys.stderr)
        report["synth_seconds"] = {
            "bundling_skipped": round(skipped, 1),
            "bundled_first": round(first, 1),
            "bundled_best": round(bundled, 1),
            "pip_cache_warm_at_start": warm,
        }
        report["assets"] = asset_sizes(Path(tmp) / "bundled0")

    print(f"\nsynth time (Python {platform.python_version()}, {os.cpu_count()} CPUs)")
    for key, value in report["synth_seconds"].items():
        print(f"  {key:26} {value}")
    print(f"\n{'asset':14} {'files':>7} {'unzipped MiB':>13} {'zipped MiB':>11} {'functions':>10}")
    for row in report["assets"]:
        print(
            f"{row['asset']:14} {row['files']:>7} {row['unzipped_mib']:>13} {row['zipped_mib']:>11} "
            f"{row['functions']:>10}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

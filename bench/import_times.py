"""Cold-start import cost of every step's handler module, and which of them load the Kubernetes client.

Each import runs in a fresh interpreter (a Lambda cold start imports the handler module once), five times;
the table shows the median. Only steps marked ``kubernetes=True`` in the catalog may load ``kubernetes``
(≈ 3.4 s here). Writes bench/results/import_times.json.

    .venv/bin/python bench/import_times.py [--repeat 5] [--step CheckPods ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functions.catalog import STEPS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "import_times.json"

# Runs in the fresh interpreter: time the import alone (not the interpreter's start), then report what it
# loaded. CPU time is shown beside wall time: it moves far less when other work shares the machine.
PROBE = """
import importlib, json, sys, time
start, cpu_start = time.perf_counter(), time.process_time()
importlib.import_module(sys.argv[1])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps({"seconds": seconds, "cpu": cpu, "kubernetes": "kubernetes" in sys.modules,
                  "modules": len(sys.modules)}))
"""

# What a Lambda's environment holds, so module-level Powertools objects start as they would there.
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "RunbookAutopilotBench",
}


def probe(module: str) -> dict[str, Any]:
    """Import ``module`` in a fresh interpreter; its import time in seconds and whether kubernetes loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        cwd=ROOT,
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{result.stderr.strip()[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import time of every step's handler module.")
    parser.add_argument("--repeat", type=int, default=5, help="fresh imports per module (median reported)")
    parser.add_argument("--step", action="append", help="only these steps (repeatable)")
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    for step in STEPS.values():
        if args.step and step.name not in args.step:
            continue
        module = step.handler.rpartition(".")[0]
        if not module_exists(module):
            missing.append(step.name)
            continue
        runs = [probe(module) for _ in range(args.repeat)]
        seconds = [run["seconds"] for run in runs]
        cpu = [run["cpu"] for run in runs]
        loads_kubernetes = any(run["kubernetes"] for run in runs)
        rows.append(
            {
                "step": step.name,
                "module": module,
                "median_ms": round(statistics.median(seconds) * 1000, 1),
                "min_ms": round(min(seconds) * 1000, 1),
                "max_ms": round(max(seconds) * 1000, 1),
                "median_cpu_ms": round(statistics.median(cpu) * 1000, 1),
                "modules_loaded": runs[-1]["modules"],
                "imports_kubernetes": loads_kubernetes,
                "kubernetes_allowed": step.kubernetes,
                "violation": loads_kubernetes and not step.kubernetes,
            }
        )
        print(f"  {step.name}: {rows[-1]['median_ms']} ms", file=sys.stderr, flush=True)

    print(
        f"\nhandler import time, median of {args.repeat} fresh interpreters (Python {platform.python_version()})\n"
    )
    print(f"{'step':<26} {'median ms':>10} {'min':>8} {'max':>8} {'cpu ms':>8} {'modules':>8}  kubernetes")
    for row in sorted(rows, key=lambda r: -r["median_ms"]):
        k8s = "yes" if row["imports_kubernetes"] else "no"
        note = "  <-- not allowed: kubernetes=False in the catalog" if row["violation"] else ""
        print(
            f"{row['step']:<26} {row['median_ms']:>10} {row['min_ms']:>8} {row['max_ms']:>8} "
            f"{row['median_cpu_ms']:>8} {row['modules_loaded']:>8}  {k8s}{note}"
        )
    for name in missing:
        print(
            f"{name:<26} skipped: handler module {STEPS[name].handler.rpartition('.')[0]} does not exist yet"
        )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeat": args.repeat,
        "load_average": os.getloadavg(),
        "steps": rows,
        "missing_handlers": missing,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    violations = [row["step"] for row in rows if row["violation"]]
    if violations:
        print(f"steps that load kubernetes without needing it: {', '.join(violations)}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the Mermaid diagrams drawn from statemachines/*.asl.json into docs/runbooks/<runbook>.md and
README.md (between the diagram markers), creating a stub document for a runbook that has none.

    python scripts/gen_docs.py           # write
    python scripts/gen_docs.py --check   # exit 1 if a document is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.diagram import expected_docs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="report stale documents, change nothing")
    args = parser.parse_args(argv)
    stale = 0
    for path, content in expected_docs(ROOT).items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale += 1
        relative = path.relative_to(ROOT)
        if args.check:
            print(f"out of date: {relative}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        print(f"{'updated' if current is not None else 'created'}: {relative}")
    if not stale:
        print("docs are up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())

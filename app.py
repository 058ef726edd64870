#!/usr/bin/env python3
"""The CDK app.

``npx cdk synth`` runs it with cdk.json's context; ``.venv/bin/python app.py [-c key=value ...] [-o DIR]``
(``make synth``) reads the same cdk.json context itself, so both synthesize the same template.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk

from functions.core.errors import ConfigurationError
from infra.app import build

ROOT = Path(__file__).resolve().parent


def _context(pairs: list[str]) -> dict[str, str] | None:
    if "CDK_CONTEXT_JSON" in os.environ:  # the CDK CLI passes cdk.json and -c values itself
        return None
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    for pair in pairs:
        key, _, value = pair.partition("=")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-o", "--output", help="cloud assembly directory (default cdk.out)")
    args = parser.parse_args(argv)
    outdir = args.output or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    # Each synth stages the function asset afresh; drop the old ones (about 120 MB each) first.
    for stale in Path(outdir).glob("asset.*"):
        shutil.rmtree(stale, ignore_errors=True)
    app = cdk.App(context=_context(args.context), outdir=outdir)
    try:
        build(app)
        app.synth()
    except ConfigurationError as error:
        print(f"synth failed: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # cdk-nag findings: the report is the message, the trace says nothing
        if "ValidationFailed" not in str(error):
            raise
        print(f"synth failed: cdk-nag findings without an acknowledgement\n{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

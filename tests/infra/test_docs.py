"""docs/deploy.md stays true: its picture parses, and it documents every context value cdk.json sets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.infra.synth import ROOT

DOC = ROOT / "docs" / "deploy.md"
PARSER = ROOT / "scripts" / "mermaid_parse.mjs"


def test_every_context_value_of_cdk_json_is_documented() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    ours = [key for key in context if not key.startswith("@aws-cdk")]
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", DOC.read_text(), re.MULTILINE))
    assert set(ours) <= documented


@pytest.mark.skipif(
    not (ROOT / "node_modules" / "mermaid").exists() or not PARSER.exists() or shutil.which("node") is None,
    reason="mermaid is not installed (node_modules/); `make install` installs it",
)
def test_the_picture_of_the_stack_is_valid_mermaid() -> None:
    (diagram,) = re.findall(r"```mermaid\n(.*?)```", DOC.read_text(), re.DOTALL)
    result = subprocess.run(
        ["node", str(PARSER)],
        input=json.dumps({"deploy": diagram, "broken": "flowchart TD\n  a --> end\n"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    errors = json.loads(result.stdout)
    assert errors["broken"] is not None  # the parser is really consulted
    assert errors["deploy"] is None

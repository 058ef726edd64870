"""Mermaid diagrams drawn from ASL, and the generated block they occupy in a Markdown document.

The docs show the flow the state machine really runs: ``scripts/gen_docs.py`` (``make docs``) writes the
block and a contract test fails when a document's block differs from a fresh drawing of its ASL file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from functions.catalog import RUNBOOKS, Runbook

START_MARKER = "<!-- diagram:start -->"
END_MARKER = "<!-- diagram:end -->"

_COMPARISONS = {
    "Equals": "==",
    "LessThan": "#lt;",
    "LessThanEquals": "#lt;=",
    "GreaterThan": "#gt;",
    "GreaterThanEquals": "#gt;=",
    "Matches": "~",
}
_TYPE_TESTS = {
    "IsNull": "null",
    "IsString": "a string",
    "IsNumeric": "a number",
    "IsBoolean": "a boolean",
    "IsTimestamp": "a timestamp",
}
# Mermaid keywords and the ids of the start and end nodes, never given to a state.
_RESERVED_IDS = frozenset({"end", "start", "done", "graph", "subgraph", "flowchart", "class", "classDef"})
_COMPARISON_RE = re.compile(r"^(String|Numeric|Boolean|Timestamp)(" + "|".join(_COMPARISONS) + r")(Path)?$")


def short_path(path: str) -> str:
    """The last two steps of a JSONPath: ``$.results.backup.status`` → ``backup.status`` (the last one alone
    is often ``status`` everywhere)."""
    parts = [part for part in path.removeprefix("$").split(".") if part]
    return ".".join(parts[-2:]) if parts else path


def describe_condition(rule: dict[str, Any]) -> str:
    """A Choice rule in short form: ``backup.status in [OK, SKIPPED] and database.status == OK``."""
    if "And" in rule:
        return " and ".join(_grouped(r) for r in rule["And"])
    if "Or" in rule:
        return any_of(rule["Or"])
    if "Not" in rule:
        return f"not {_grouped(rule['Not'])}"
    variable = short_path(str(rule.get("Variable", "?")))
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment"):
            continue
        if key == "IsPresent":
            return f"{variable} present" if value else f"no {variable}"
        if key in _TYPE_TESTS:
            return f"{variable} is {'' if value else 'not '}{_TYPE_TESTS[key]}"
        match = _COMPARISON_RE.match(key)
        if match:
            operand = short_path(str(value)) if match.group(3) else _literal(value)
            return f"{variable} {_COMPARISONS[match.group(2)]} {operand}"
    return "?"


def any_of(rules: list[dict[str, Any]]) -> str:
    """Alternatives; equality tests of one variable read as ``action in [RESTART, ROLLBACK]``."""
    variables = {rule.get("Variable") for rule in rules}
    keys = {key for rule in rules for key in rule if key not in ("Variable", "Next", "Comment")}
    if len(rules) > 1 and len(variables) == 1 and None not in variables and len(keys) == 1:
        (key,) = keys
        if key in ("StringEquals", "NumericEquals"):
            values = ", ".join(_literal(rule[key]) for rule in rules)
            return f"{short_path(str(rules[0]['Variable']))} in [{values}]"
    return " or ".join(map(_grouped, rules))


def _grouped(rule: dict[str, Any]) -> str:
    text = describe_condition(rule)
    return f"({text})" if " and " in text or " or " in text else text


def _literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _label(text: str) -> str:
    """Quote a label for Mermaid; quotes and angle brackets would end or break it."""
    return '"' + text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


def _edge_label(text: str) -> str:
    # Conditions arrive with their entities already written (#lt;), so only quotes need escaping.
    return '"' + text.replace('"', "#quot;") + '"'


class _Drawing:
    def __init__(self) -> None:
        self.lines: list[str] = ["flowchart TD"]
        self.ids: dict[str, str] = {}
        self.classes: dict[str, list[str]] = {"succeed": [], "fail": []}

    def node_id(self, name: str) -> str:
        if name not in self.ids:
            base = re.sub(r"\W+", "_", name).strip("_") or "state"
            candidate, n = base, 2
            while candidate in self.ids.values() or candidate in _RESERVED_IDS:
                candidate, n = f"{base}_{n}", n + 1
            self.ids[name] = candidate
        return self.ids[name]

    def scope(self, states: dict[str, Any], indent: str) -> None:
        """Declare every node of one scope (top level, a branch, an iterator), then its edges."""
        for name, state in states.items():
            self.node(name, state, indent)
        for name, state in states.items():
            self.edges(name, state, indent)

    def node(self, name: str, state: dict[str, Any], indent: str) -> None:
        node = self.node_id(name)
        kind = state.get("Type")
        if kind == "Parallel":
            # A fork, one subgraph per branch, a join: Mermaid then lays the branches side by side (a
            # subgraph linked as a whole would stack them, whatever its direction says).
            self.lines.append(f"{indent}{node}[[{_label(name + ' (in parallel)')}]]")
            for index, branch in enumerate(state.get("Branches", []), start=1):
                states = branch.get("States", {})
                self.lines.append(f"{indent}subgraph {node}__branch{index}[{_label(f'branch {index}')}]")
                self.scope(states, indent + "  ")
                self.lines.append(f"{indent}end")
                self.lines.append(f"{indent}{node} --> {self.node_id(branch['StartAt'])}")
                self.lines.extend(
                    f"{indent}{self.node_id(end)} --> {node}__join"
                    for end, end_state in states.items()
                    if end_state.get("End") or end_state.get("Type") == "Succeed"
                )
            self.lines.append(f"{indent}{node}__join[[{_label(name + ': all branches done')}]]")
        elif kind == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            self.lines.append(f"{indent}subgraph {node}[{_label(name + ' (for each item)')}]")
            self.scope(processor.get("States", {}), indent + "  ")
            self.lines.append(f"{indent}end")
        elif kind == "Choice":
            self.lines.append(f"{indent}{node}{{{_label(name)}}}")
        elif kind == "Wait":
            self.lines.append(f"{indent}{node}[/{_label(name)}/]")
        elif kind in ("Succeed", "Fail"):
            self.lines.append(f"{indent}{node}([{_label(name)}])")
            self.classes[str(kind).lower()].append(node)
        else:  # Task, Pass
            self.lines.append(f"{indent}{node}[{_label(name)}]")

    def edges(self, name: str, state: dict[str, Any], indent: str) -> None:
        node = self.node_id(name)
        if state.get("Type") == "Parallel":  # it goes on, or is caught, once its branches have ended
            node += "__join"
        # Rules that lead to the same state share one edge: "action in [RESTART, ROLLBACK]".
        rules_by_target: dict[str, list[dict[str, Any]]] = {}
        for choice in state.get("Choices", []):
            rules_by_target.setdefault(choice["Next"], []).append(choice)
        for target, rules in rules_by_target.items():
            label = _edge_label(describe_condition(rules[0]) if len(rules) == 1 else any_of(rules))
            self.lines.append(f"{indent}{node} -->|{label}| {self.node_id(target)}")
        if "Default" in state:
            self.lines.append(f"{indent}{node} -->|otherwise| {self.node_id(state['Default'])}")
        if "Next" in state:
            self.lines.append(f"{indent}{node} --> {self.node_id(state['Next'])}")
        for catcher in state.get("Catch", []):
            label = _edge_label(", ".join(catcher.get("ErrorEquals", [])))
            self.lines.append(f"{indent}{node} -.->|{label}| {self.node_id(catcher['Next'])}")


def to_mermaid(asl: dict[str, Any]) -> str:
    """A Mermaid flowchart of a state machine: Parallel branches and Map iterators as subgraphs, Choice
    edges labelled with their conditions, Catch edges dashed and labelled with the error names, Succeed and
    Fail as end shapes."""
    drawing = _Drawing()
    drawing.lines.append("  start((start))")
    drawing.scope(asl.get("States", {}), "  ")
    drawing.lines.append(f"  start --> {drawing.node_id(asl['StartAt'])}")
    ends = [name for name, state in asl.get("States", {}).items() if state.get("End")]
    if ends:
        drawing.lines.append("  done((end))")
        drawing.lines.extend(f"  {drawing.node_id(name)} --> done" for name in ends)
    drawing.lines.append("  classDef succeed fill:#d4f7d4,stroke:#2e7d32")
    drawing.lines.append("  classDef fail fill:#fbd5d5,stroke:#c62828")
    for kind, nodes in drawing.classes.items():
        if nodes:
            drawing.lines.append(f"  class {','.join(nodes)} {kind}")
    return "\n".join(drawing.lines) + "\n"


def diagram_block(asl_path: Path) -> str:
    """The generated block, markers included, for one ASL file."""
    asl = json.loads(asl_path.read_text())
    return (
        f"{START_MARKER}\n"
        f"<!-- generated from statemachines/{asl_path.name} by `make docs`; edit the ASL, not this -->\n"
        f"```mermaid\n{to_mermaid(asl)}```\n"
        f"{END_MARKER}"
    )


def find_block(text: str) -> str | None:
    """The block between the markers, markers included, or None when the text has none."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER, start)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(END_MARKER)]


def replace_block(text: str, block: str) -> str:
    """The text with its block (markers included) replaced; the text must already have the markers."""
    current = find_block(text)
    if current is None:
        raise ValueError(f"no {START_MARKER} … {END_MARKER} block")
    return text.replace(current, block, 1)


def iter_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, including those inside Parallel branches and Map iterators."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from iter_states(branch.get("States", {}))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from iter_states(processor.get("States", {}))


# --- the documents that carry the diagrams ---------------------------------------------------------

DOC_SECTIONS = ("What it does", "Inputs", "Outputs", "What it changes and how to undo it")


def stub_doc(title: str, block: str) -> str:
    """A new runbook document: the sections its authors fill in, and the generated diagram."""
    sections = "".join(f"## {section}\n\n_To be written._\n\n" for section in DOC_SECTIONS)
    return f"# {title}\n\n{sections}## Flow\n\n{block}\n"


def refreshed_doc(current: str | None, title: str, block: str) -> str:
    """The document with its diagram block brought up to date; prose outside the markers is kept."""
    if current is None:
        return stub_doc(title, block)
    if find_block(current) is None:
        return current.rstrip("\n") + f"\n\n## Flow\n\n{block}\n"
    return replace_block(current, block)


def readme_block(blocks: dict[str, str]) -> str:
    """One block holding every runbook's diagram, for README.md: ``blocks`` maps a title to its block."""
    parts = []
    for title, block in blocks.items():
        inner = block.removeprefix(START_MARKER + "\n").removesuffix("\n" + END_MARKER)
        parts.append(f"#### {title}\n\n{inner}\n")
    return f"{START_MARKER}\n" + "\n".join(parts) + END_MARKER


def expected_docs(root: Path, runbooks: Iterable[Runbook] | None = None) -> dict[Path, str]:
    """Every generated document's expected content: docs/runbooks/<runbook>.md for each runbook (of the
    catalog, unless given) whose ASL file exists, and README.md when it has the markers."""
    if runbooks is None:
        runbooks = RUNBOOKS.values()
    expected: dict[Path, str] = {}
    readme_parts: dict[str, str] = {}
    for runbook in runbooks:
        asl_path = root / "statemachines" / runbook.asl_file
        if not asl_path.exists():
            continue
        block = diagram_block(asl_path)
        doc = root / "docs" / "runbooks" / f"{runbook.name}.md"
        current = doc.read_text() if doc.exists() else None
        expected[doc] = refreshed_doc(current, runbook.description, block)
        readme_parts[f"{runbook.description} (`{runbook.name}`)"] = block
    readme = root / "README.md"
    if readme.exists() and find_block(readme.read_text()) is not None and readme_parts:
        expected[readme] = replace_block(readme.read_text(), readme_block(readme_parts))
    return expected

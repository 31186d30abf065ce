"""Mutation testing for ``make mutate``: run mutmut, then print a score per mutated file.

    python scripts/mutation_report.py run [MUTMUT RUN ARGS...]   # mutmut run, pytest-9.2-safe
    python scripts/mutation_report.py [--all]                    # the per-file report

mutmut 3 keeps each source file's verdicts in ``mutants/<path>.meta`` (JSON, exit code by
mutant name); the report reads those and prints ``killed / total`` per file with the
names of the mutants that were not killed (``--all`` lists the killed ones too). Inspect
one with ``.venv/bin/mutmut show <name>``.

``run`` starts mutmut in this process with two adjustments to mutmut 3.7 (3.8 cannot be
installed next to faust-streaming):

* it reads ``item._nodeid``, which pytest 9.2 removed; the public ``nodeid`` is the same
  string, and mutmut runs pytest in its own process, so an alias here is enough;
* it leaves every decorated class alone, so the methods of ``@dataclass`` classes (the
  StageRunner, StageContext, Codec, RawMessage) would get no mutants at all. A dataclass
  decorator only reads the annotated fields, which mutmut neither mutates nor adds to (its
  mutant functions and trampolines are plain methods, its tables live outside the class),
  so those classes are mutated like undecorated ones. Other decorators stay excluded.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"

# mutmut's exit code -> verdict (mutmut.__main__.status_by_exit_code, without importing it:
# that module sets up multiprocessing and reads the config at import time).
STATUS = {
    None: "not checked",
    0: "survived",
    1: "killed",
    3: "killed",
    2: "interrupted",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    -9: "segfault",
    -11: "segfault",
}


def status_of(exit_code: int | None) -> str:
    return STATUS.get(exit_code, "suspicious")


def load_results(mutants: Path = MUTANTS) -> dict[str, dict[str, int | None]]:
    """Source path -> {mutant name: exit code}, for every file that was mutated."""
    return {
        str(meta.relative_to(mutants).with_suffix("")): json.loads(meta.read_text())[
            "exit_code_by_key"
        ]
        for meta in sorted(mutants.rglob("*.py.meta"))
    }


def report(results: dict[str, dict[str, int | None]], *, show_all: bool = False) -> str:
    lines = []
    width = max(len(p) for p in results)
    killed_all = total_all = 0
    for path, exit_codes in results.items():
        statuses = {name: status_of(code) for name, code in exit_codes.items()}
        counts = Counter(statuses.values())
        killed, total = counts["killed"], len(statuses)
        killed_all += killed
        total_all += total
        if not total:
            lines.append(f"{path:<{width}}  no mutants (nothing mutmut can mutate)")
            continue
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        lines.append(
            f"{path:<{width}}  {killed:>4} / {total:<4} killed  {100 * killed / total:5.1f}%"
            + (f"  ({others})" if others else "")
        )
        for name, status in sorted(statuses.items(), key=lambda kv: _natural(kv[0])):
            if show_all or status != "killed":
                lines.append(f"    {status:<12} {name}")
    lines.append(
        f"{'total':<{width}}  {killed_all:>4} / {total_all:<4} killed  "
        f"{100 * killed_all / max(total_all, 1):5.1f}%"
    )
    return "\n".join(lines)


def _natural(name: str) -> tuple[str, int]:
    """Sort ``f__mutmut_2`` before ``f__mutmut_10``."""
    stem, _, number = name.rpartition("__mutmut_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def run_mutmut(args: list[str]) -> None:
    from _pytest.nodes import Node

    if not hasattr(Node, "_nodeid"):
        Node._nodeid = property(lambda self: self.nodeid)  # type: ignore[attr-defined]

    os.chdir(ROOT)  # mutmut reads [tool.mutmut] from ./pyproject.toml, on import already
    from mutmut.__main__ import cli

    _mutate_dataclasses()
    cli.main(["run", *args], prog_name="mutmut")


def _mutate_dataclasses() -> None:
    import libcst as cst
    from libcst.metadata import PositionProvider
    from mutmut.mutation.file_mutation import MutationVisitor

    skip = MutationVisitor._skip_node_and_children

    def is_dataclass(decorator: cst.Decorator) -> bool:
        target = decorator.decorator
        if isinstance(target, cst.Call):
            target = target.func
        if isinstance(target, cst.Attribute):
            target = target.attr
        return isinstance(target, cst.Name) and target.value == "dataclass"

    def skip_node_and_children(self: MutationVisitor, node: cst.CSTNode) -> bool:
        if (
            isinstance(node, cst.ClassDef)
            and node.decorators
            and all(is_dataclass(d) for d in node.decorators)
        ):
            # As mutmut does for an undecorated class: skipped only by a pragma.
            position = self.get_metadata(PositionProvider, node, None)
            if position and position.start.line in self._ignored_node_lines:
                self.ignored_classes.add(node.name.value)
                return True
            return False
        return skip(self, node)

    MutationVisitor._skip_node_and_children = skip_node_and_children  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        run_mutmut(argv[1:])
        return 0
    results = load_results()
    if not results:
        print("no mutation results in mutants/: run `make mutate` first", file=sys.stderr)
        return 1
    print(report(results, show_all="--all" in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

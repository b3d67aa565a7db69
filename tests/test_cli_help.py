"""Help and manual agree: every command's options are in the README's command table (or its
shared-flags paragraphs), every flag the table names exists, and every option has a help text."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lit_algos.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
FLAG = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")


def commands(parser, prefix=()):
    """(command words, parser) for every leaf command, e.g. ("sweep ab", ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from commands(sub, (*prefix, name))
                else:
                    yield " ".join((*prefix, name)), sub


def readme_table() -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Flags per command row, the shared flags, and the sweeps' executor flags."""
    section = README[README.index("## Commands") : README.index("## Recipes")]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\| `lit-algos ([a-z]+(?: [a-z]+)?)", line)
        if m:
            rows.setdefault(m.group(1), set()).update(
                f for f in FLAG.findall(line) if not f.startswith("--trainer")
            )

    def paragraph(start: str) -> set[str]:
        text = section[section.index(start) :]
        return set(FLAG.findall(text[: text.index("\n\n")]))

    return rows, paragraph("Flags many commands share"), paragraph("Executor flags")


def test_every_command_option_is_in_the_readme_and_every_readme_flag_exists():
    rows, shared, executor = readme_table()
    problems = []
    for name, sub in commands(build_parser()):
        row = rows.get(name) if name in rows else rows.get(name.split()[0] if name.split()[0] in rows else "")
        if row is None:
            problems.append(f"{name}: no row in the README's command table")
            continue
        options = {o for a in sub._actions for o in a.option_strings if o not in ("-h", "--help")}
        allowed = row | shared | (executor if name.startswith("sweep ") else set())
        problems += [f"{name}: {o} is not in the README" for o in sorted(options - allowed)]
        problems += [f"{name}: the README names {f}, which it does not have" for f in sorted(row - options)]
        problems += [
            f"{name}: {a.option_strings or a.dest} has no help text"
            for a in sub._actions
            if not a.help and a.option_strings != ["-h", "--help"]
        ]
    assert problems == []


def test_components_lists_every_axis_of_the_readme_table():
    from lit_algos.cli.model_cmds import components_dict

    table = README[README.index("| axis | entries |") :]
    table = table[: table.index("\n\n")]
    axes = re.findall(r"^\| ([a-z_]+) \|", table, re.M)
    assert axes and set(axes) - {"axis"} == set(components_dict())
    assert {e["name"] for e in components_dict()["mixer"]} == {"transformer", "lstm"}


def test_recipes_lists_no_size_fragments_and_every_recipe_has_a_description(capsys):
    from lit_algos.cli import main
    from lit_algos.config.recipes import list_recipes, load_config

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    names = list_recipes(fragments=False)
    assert names and not any(n.startswith("scales/") for n in names)
    rows = [line for line in out.splitlines() if line.startswith("│ scales/")]
    assert rows == [] and "size fragments" in out and "scales/tiny" in out
    assert all(load_config(n).description for n in names)

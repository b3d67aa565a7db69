"""The README and docs/ agree with the tree: the layout map names what is there, links resolve, and
every "docs/design.md §N" reference in the code points at a section the design document has."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lit_algos"
README = (REPO / "README.md").read_text()


def layout_map(readme: str) -> set[str]:
    """The names the Development section's map lists directly under ``lit_algos/`` (``config/``,
    ``model.py``): lines indented by two spaces in the fenced block that starts with ``lit_algos/``."""
    section = readme[readme.index("## Development") :]
    block = re.search(r"```\n(lit_algos/\n.*?)```", section, re.S)
    assert block, (
        "the README's Development section lost its layout map (a ``` block starting with lit_algos/)"
    )
    return {m.group(1) for m in re.finditer(r"^  (\w+(?:/|\.py))\s", block.group(1), re.M)}


def package_tree(root: Path) -> set[str]:
    """Every package folder (``name/``, with an ``__init__.py``) and module (``name.py``) directly in
    ``root``, without the package's own ``__init__.py`` and ``__main__.py``."""
    folders = {f"{p.name}/" for p in root.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in root.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    return folders | modules


def test_the_layout_map_names_every_package_folder_and_module_and_nothing_else():
    mapped, tree = layout_map(README), package_tree(PACKAGE)
    assert {"config/", "model.py"} <= mapped, f"the map parser found only {sorted(mapped)}"
    missing, stale = sorted(tree - mapped), sorted(mapped - tree)
    assert not missing, f"lit_algos/ has {missing}, which the README's layout map (Development) does not name"
    assert not stale, f"the README's layout map names {stale}, which lit_algos/ does not have"


def test_the_layout_check_fails_on_a_folder_the_map_leaves_out(tmp_path):
    (tmp_path / "newpkg").mkdir()
    (tmp_path / "newpkg" / "__init__.py").write_text("")
    (tmp_path / "notes").mkdir()  # no __init__.py: not a package
    (tmp_path / "solo.py").write_text("")
    (tmp_path / "__main__.py").write_text("")
    assert package_tree(tmp_path) == {"newpkg/", "solo.py"}
    readme = "## Development\n\n```\nlit_algos/\n  solo.py       one module\nrecipes/\n```\n"
    assert package_tree(tmp_path) - layout_map(readme) == {"newpkg/"}


def relative_links(path: Path) -> list[tuple[str, Path]]:
    """Markdown links in ``path`` to files of this repository (not web addresses), anchors dropped."""
    links = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    local = [link.split("#", 1)[0] for link in links if not re.match(r"[a-z]+:", link)]
    return [(link, (path.parent / link).resolve()) for link in local if link]


def test_links_in_the_readme_and_docs_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    broken = [
        f"{page.relative_to(REPO)} -> {link}"
        for page in pages
        for link, target in relative_links(page)
        if not target.exists()
    ]
    assert not broken, f"links to files that do not exist: {broken}"


def test_design_references_point_at_sections_of_docs_design():
    design = (REPO / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\. ", design, re.M))
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "tests").glob("*.py"), REPO / "README.md"]
    cited = {
        (str(path.relative_to(REPO)), number)
        for path in sources
        for number in re.findall(r"docs/design\.md §(\d+)", path.read_text())
    }
    assert cited, "no code cites docs/design.md any more; drop this test or the document"
    unknown = sorted(f"{path} cites §{n}" for path, n in cited if n not in sections)
    assert not unknown, f"docs/design.md has sections {sorted(sections, key=int)}; {unknown}"
    old = sorted(str(p.relative_to(REPO)) for p in sources if re.search(r"DESIGN §\d", p.read_text()))
    assert not old, f"{old} still cite the old DESIGN §N; point them at docs/design.md §N"

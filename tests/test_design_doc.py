"""docs/design.md exists and every docstring that cites it names a section it has."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sources():
    for folder in ("stpn", "tests", "benchmarks"):
        yield from (ROOT / folder).rglob("*.py")
    yield ROOT / "README.md"


def test_every_citation_names_a_section_of_the_design_document():
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", (ROOT / "docs" / "design.md").read_text(), re.M)
    assert {"3", "3.1", "3.2", "3.3", "3.5", "5"} <= set(headings)
    cited = {}
    for path in sources():
        for section in re.findall(r"docs/design\.md §(\d+(?:\.\d+)?)", path.read_text()):
            cited.setdefault(section, []).append(path.name)
    assert len(cited) >= 4
    missing = {s: files for s, files in cited.items() if s not in headings}
    assert not missing, f"citations of sections docs/design.md does not have: {missing}"


def test_no_citation_of_a_file_users_cannot_read():
    stale = [str(p.relative_to(ROOT)) for p in sources()
             if re.search(r"DESIGN\.md", p.read_text())]
    assert not stale, stale

"""The README opens with the two set-up commands, and CI runs the second one verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```sh")
    end = lines.index("```", start + 1)
    return [line for line in lines[start + 1 : end] if line and not line.startswith("#")]


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    main, tests = commands
    assert main.startswith("python3 -m venv .venv") and main.endswith("nmt-train")
    assert "pip install -q torch==2.13.0" in main and "pip install -q torch==2.13.0" in tests
    assert tests.endswith('pytest -m "not slow"')


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


# A name in the docs is a repository path when it starts with one of these folders.
TOP = ("nmt/", "configs/", "docs/", "benchmarks/", "scripts/", "tests/", ".ci/")
TOPS = "|".join(re.escape(t) for t in TOP)
PATH = re.compile(rf"(?<![\w./-])((?:{TOPS})[\w./-]*\w)")
MODULE = re.compile(r"(?<![\w./-])(nmt(?:\.\w+)+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def documents() -> list[Path]:
    """README, docs/ (the published results' generated reports aside) and the YAML configs."""
    docs = [p for p in (ROOT / "docs").rglob("*.md") if "results" not in p.parts]
    return [ROOT / "README.md", *docs, *sorted((ROOT / "configs").rglob("*.yaml"))]


def module_exists(name: str) -> bool:
    """`nmt.a.b` names a module or package, or a name defined in one (`nmt.Translator`)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        source = base.with_suffix(".py")
        source = source if source.is_file() else base / "__init__.py"
        if source.is_file():
            defined = n == len(parts) or re.search(rf"\b{parts[n]}\b", source.read_text())
            return bool(defined)
    return False


def path_exists(name: str, after: str) -> bool:
    """A repository path; one followed by `*` is a glob's stem, a NAME in capitals a placeholder."""
    pattern = re.sub(r"\b[A-Z]{2,}\b", "*", name) + ("*" if after == "*" else "")
    if "*" in pattern:
        return any(ROOT.glob(pattern))
    return (ROOT / name).exists()


def test_every_path_and_module_the_docs_name_exists():
    missing = []
    for doc in documents():
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            where = f"{doc.relative_to(ROOT)}:{lineno}"
            for match in PATH.finditer(line):
                if not path_exists(match[1], line[match.end() : match.end() + 1]):
                    missing.append(f"{where}: {match[1]}")
            missing += [f"{where}: {m}" for m in MODULE.findall(line) if not module_exists(m)]
            for target in LINK.findall(line):
                if "://" not in target and not (doc.parent / target).exists():
                    missing.append(f"{where}: {target}")
    assert not missing, "\n".join(missing)


def test_the_project_points_nowhere_outside_itself():
    """A clone has no sibling folders: nothing names one."""
    outside = re.compile(r"\.\./shared|DESIGN\.md|paper-notes")
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("nmt", "configs", "docs", "benchmarks", "scripts", "tests")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".sh", ".html"}
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if outside.search(line) and path.name != "test_docs.py"
    ]
    readme = (ROOT / "README.md").read_text().splitlines()
    hits += [f"README.md:{n}" for n, line in enumerate(readme, 1) if outside.search(line)]
    assert not hits, "\n".join(hits)


def test_the_design_tree_names_every_module_and_only_modules_that_exist():
    """docs/design.md's tree: each row's `x.py` files are in its folder, and every module of the
    package is named in its folder's row."""
    design = (ROOT / "docs/design.md").read_text()
    rows = re.findall(r"^\| `(nmt/[\w/]*)` \| (.*) \|$", design, re.M)
    assert rows
    problems = []
    for folder, text in rows:
        named = set(re.findall(r"`(\w+\.py)`", text))
        present = {p.name for p in (ROOT / folder).glob("*.py")}
        problems += [f"{folder}{n}: named, missing" for n in sorted(named - present)]
        unnamed = present - named - {"__init__.py"}
        problems += [f"{folder}{n}: present, not named" for n in sorted(unnamed)]
    assert not problems, "\n".join(problems)

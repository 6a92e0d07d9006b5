"""The user guide stays true to the code: CLI reference, links and module coverage."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tradenn.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (command path, parser) below ``parser``, nested ones (``data list``) included."""
    sub = _subparsers(parser)
    if sub is None:
        return
    for name, child in sub.choices.items():
        yield (*path, name), child
        yield from _commands(child, (*path, name))


COMMANDS = list(_commands(build_parser()))


def _section(text: str, command: str) -> str:
    """The part of cli.md under the heading of ``command``, up to the next heading."""
    match = re.search(rf"^#+ `{re.escape(command)}`\s*$", text, flags=re.MULTILINE)
    assert match, f"docs/cli.md has no heading `{command}`"
    rest = text[match.end() :]
    following = re.search(r"^#+ ", rest, flags=re.MULTILINE)
    return rest[: following.start()] if following else rest


def test_the_parser_has_nested_commands():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"backtest", "data", "data list", "paper", "paper run"} <= names


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_cli_md_documents_every_command_and_long_option(path, parser):
    text = (DOCS / "cli.md").read_text()
    command = "tradenn " + " ".join(path)
    section = _section(text, command)
    options = [
        option
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
        if option.startswith("--")
    ]
    missing = [option for option in options if f"`{option}`" not in section]
    assert not missing, f"{command}: options not documented in docs/cli.md: {missing}"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: broken relative links {broken}"


def test_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    pages = [p.name for p in DOCS.glob("*.md") if p.name != "README.md"]
    assert pages
    missing = [name for name in pages if f"]({name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"


def test_every_public_module_is_mentioned_in_the_docs():
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    modules = [
        path for path in sorted((ROOT / "tradenn").rglob("*.py")) if not path.name.startswith("_")
    ]
    assert len(modules) > 50
    missing = []
    for path in modules:
        relative = path.relative_to(ROOT)
        dotted = ".".join(relative.with_suffix("").parts)
        if dotted not in text and relative.as_posix() not in text:
            missing.append(dotted)
    assert not missing, f"modules never mentioned in docs/: {missing}"

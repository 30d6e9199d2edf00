"""`make help` names every target and every variable the Makefile reads; the README and
docs/ name only targets and variables that exist, docs/variables.md lists every variable
with the Makefile's default, their links lead somewhere, and the README stays short."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

# Set inside the Makefile or by the environment, not by a user.
INTERNAL = {'GPTOOL', 'PYTHON', 'CURDIR', 'HOME', 'XDG_CACHE_HOME'}
# Environment variables the docs may name that the Makefile does not read, each with a
# file that reads it (checked, so that a name that goes out of use goes out of the docs).
ENVIRONMENT = {
    'MATRIX_JOBS': 'ci/matrix.sh',
    'CCACHE_REMOTE_STORAGE': 'ci/matrix.sh',
    'GP_DEPS': 'ci/deps',
    'GP_HARNESS': 'ci/gptool/bisect.py',
    'GP_OUTCOME': 'ci/gptool/__main__.py',
    'CCACHE_BASEDIR': 'ci/gptool/kbuild.py',
    'CCACHE_NOHASHDIR': 'ci/gptool/kbuild.py',
    'KCPPFLAGS': 'ci/gptool/kbuild.py',
    'LANG': 'ci/gptool/kbuild.py',
    'LC_ALL': 'ci/gptool/kbuild.py',
    'LC_CTYPE': 'ci/gptool/kbuild.py',
    'LC_MESSAGES': 'ci/gptool/kbuild.py',
}
# `make TARGET` in the docs that is another Makefile's (the kernel's), not ours.
OTHER_MAKEFILES = {'headers'}
# VAR=value: a placeholder, not a variable.
PLACEHOLDERS = {'VAR'}
README_MAX_LINES = 250

MAKEFILE = (REPO / 'Makefile').read_text()
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]


def makefile_targets() -> set[str]:
    phony = re.search(r'^\.PHONY:(.*)$', MAKEFILE, re.M)
    assert phony
    return set(phony.group(1).split())


def makefile_variables() -> set[str]:
    return (set(re.findall(r'\$\(([A-Z_]+)\)', MAKEFILE))
            | set(re.findall(r'^([A-Z_]+)\s*[?:]?=', MAKEFILE, re.M))) - INTERNAL


def makefile_defaults() -> dict[str, str]:
    """VAR ?= value, for the values that are literals."""
    return {name: value.strip() for name, value in
            re.findall(r'^([A-Z_]+)\s*\?=(.*)$', MAKEFILE, re.M) if '$' not in value}


def code(text: str) -> list[str]:
    """The code of a markdown file: fenced blocks and inline spans."""
    blocks = re.findall(r'^```[^\n]*\n(.*?)^```', text, re.M | re.S)
    prose = re.sub(r'^```[^\n]*\n.*?^```', '', text, flags=re.M | re.S)
    return blocks + re.findall(r'`([^`\n]+)`', prose)


def test_help_lists_every_target_and_variable() -> None:
    targets = makefile_targets() - {'help'}
    shown = subprocess.run(['make', '-s', '-C', str(REPO), 'help'], capture_output=True, text=True,
                           check=True).stdout
    words = set(re.findall(r'[A-Za-z_-]+', shown))
    assert {t for t in targets if t not in words} == set()
    assert {v for v in makefile_variables() if v not in words} == set()


def test_the_readme_is_short() -> None:
    lines = len((REPO / 'README.md').read_text().splitlines())
    assert lines <= README_MAX_LINES, f'README.md has {lines} lines: move detail to docs/'


def test_docs_exist() -> None:
    assert {p.name for p in DOCS} >= {'README.md', 'allocator.md', 'pks-page-tables.md',
                                      'benchmarks.md', 'ci-matrix.md', 'bisect.md',
                                      'measurements.md', 'variables.md'}


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: p.name)
def test_every_make_target_named_exists(doc: Path) -> None:
    targets = makefile_targets()
    named = set()
    for snippet in code(doc.read_text()):
        for flags, target in re.findall(r'(?<![\w/.-])make((?:\s+-[a-zA-Z]+)*)\s+([a-z][a-z0-9-]*)',
                                        snippet):
            if '-C' not in flags and target not in OTHER_MAKEFILES:
                named.add(target)
    assert named - targets == set(), f'{doc.name} names make targets the Makefile lacks'


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: p.name)
def test_every_variable_named_exists(doc: Path) -> None:
    known = makefile_variables() | set(ENVIRONMENT)
    named = set()
    for snippet in code(doc.read_text()):
        if 'CONFIG_' in snippet or 'make -C' in snippet:  # kconfig, or another Makefile
            continue
        named |= set(re.findall(r'(?<![\w$.-])([A-Z][A-Z0-9_]*)=', snippet))
    assert named - known - PLACEHOLDERS == set(), f'{doc.name} names variables neither the Makefile nor a ' \
        'script reads (a new environment variable goes into ENVIRONMENT here)'


def test_the_environment_variables_are_read_where_listed() -> None:
    docs = '\n'.join(doc.read_text() for doc in DOCS)
    for name, reader in ENVIRONMENT.items():
        assert name in (REPO / reader).read_text(), (name, reader)
        assert name in docs, f'{name} is documented nowhere: drop it from ENVIRONMENT'


def variables_table() -> list[tuple[list[str], str]]:
    """docs/variables.md's first table: the variables of a row and its default cell."""
    text = (REPO / 'docs' / 'variables.md').read_text()
    table = text[text.index('| variable | default |'):].split('\n\n')[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        rows.append((re.findall(r'`([A-Z_]+)`', cells[0]), cells[1]))
    return rows


def test_variables_md_lists_every_variable_with_its_default() -> None:
    rows = variables_table()
    listed = {name for names, _ in rows for name in names}
    assert makefile_variables() - listed == set(), 'docs/variables.md misses these'
    assert listed - makefile_variables() - set(ENVIRONMENT) == set()
    defaults = makefile_defaults()
    for names, cell in rows:
        values = re.findall(r'`([^`]*)`', cell)
        if len(names) == 1 and values:
            values = values[:1]  # RUNS: `1` (`bench`), `8` (`compare`)
        for i, name in enumerate(names):
            if name not in defaults:
                continue
            if defaults[name] == '':
                assert not values, (name, cell)
            else:
                assert i < len(values) and values[i] == defaults[name], (name, cell, defaults[name])


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path: Path) -> set[str]:
    text = re.sub(r'^```.*?^```', '', path.read_text(), flags=re.M | re.S)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r'^#{1,6} (.*)$', text, re.M):
        base = slug(heading)
        found.add(base if base not in seen else f'{base}-{seen[base]}')
        seen[base] = seen.get(base, 0) + 1
    return found


@pytest.mark.parametrize('doc', [*DOCS, REPO / 'results' / 'README.md'],
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_lead_somewhere(doc: Path) -> None:
    text = re.sub(r'^```.*?^```', '', doc.read_text(), flags=re.M | re.S)
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+:', target):
            continue
        path, _, anchor = target.partition('#')
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f'{doc.name}: {target}'
        if anchor:
            assert anchor in anchors(dest), f'{doc.name}: {target}: no such heading'

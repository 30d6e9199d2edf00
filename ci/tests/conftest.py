"""Fixtures: real kernel files from the Debian tarball, arranged as small kernel git trees."""
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gptool import tree  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# Tests that extract files from the 6.12 tarball (15 s a time on two cores) are slow.
TARBALL_FIXTURES = {'real_kernel_files', 'kunit_tool', 'kernel_git'}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'slow: end-to-end or tarball tests; make pytest-fast '
                            'leaves them out, make pytest runs them after the others')


# Screenshots the browser tests took, named at the end of the run: a person may look.
SCREENSHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:  # _pytest.terminal.TerminalReporter
    for path in SCREENSHOTS:
        terminalreporter.write_line(f'screenshot: {path}')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TARBALL_FIXTURES & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.slow)
# The files a kernel tree needs for the tree checks, and every file our patches touch.
KERNEL_FILES = sorted({'Makefile', 'Kconfig', 'tools/testing/kunit/kunit.py', 'lib/Kconfig',
                       *(target for patch in (REPO / 'kernel/patches').glob('*.patch')
                         for target in tree.patch_targets(patch))})


@pytest.fixture(scope='session')
def real_kernel_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pristine versions of KERNEL_FILES, extracted from linux-source-6.12."""
    if not tree.DEFAULT_TARBALL.is_file():
        pytest.fail(f'{tree.DEFAULT_TARBALL} is missing: run `make deps`')
    dest = tmp_path_factory.mktemp('linux-files')
    top = 'linux-source-6.12'
    subprocess.run(['tar', '-x', '-f', str(tree.DEFAULT_TARBALL), '-C', str(dest),
                    '--strip-components=1', *[f'{top}/{f}' for f in KERNEL_FILES]], check=True)
    return dest


@pytest.fixture(scope='session')
def kunit_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tools/testing/kunit of linux-source-6.12: the real kunit.py and its test_data logs."""
    if not tree.DEFAULT_TARBALL.is_file():
        pytest.fail(f'{tree.DEFAULT_TARBALL} is missing: run `make deps`')
    dest = tmp_path_factory.mktemp('kunit-tool')
    subprocess.run(['tar', '-x', '-f', str(tree.DEFAULT_TARBALL), '-C', str(dest),
                    '--strip-components=1', 'linux-source-6.12/tools/testing/kunit'], check=True)
    return dest / 'tools/testing/kunit'


def git(path: Path, *args: str) -> str:
    return subprocess.run(['git', '-C', str(path), '-c', 'user.name=t', '-c', 'user.email=t@t',
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def working_copy(dest: Path) -> Path:
    """A clone of this repo holding its work tree as it is now (uncommitted edits too)."""
    subprocess.run(['git', 'clone', '--quiet', str(REPO), str(dest)], check=True)
    for name in filter(None, git(REPO, 'ls-files', '-z').split('\0')):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture
def kernel_git(tmp_path: Path, real_kernel_files: Path) -> Path:
    """A small kernel git tree of real files, committed and tagged like upstream."""
    src = tmp_path / 'linux'
    shutil.copytree(real_kernel_files, src)
    git(src, 'init', '-q')
    git(src, 'add', '-A')
    git(src, 'commit', '-q', '-m', 'base')
    git(src, 'tag', 'v6.12-test')
    return src


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """Our overlay (kernel/, kunit/) in a scratch repo that tests may edit."""
    dest = tmp_path / 'repo'
    for part in ('kernel', 'kunit', 'configs'):
        shutil.copytree(REPO / part, dest / part)
    return dest

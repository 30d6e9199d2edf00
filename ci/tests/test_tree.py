"""Tree preparation on real kernel files: overlay, patches, idempotency, bad input."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, git
from gptool import tree
from gptool.errors import HarnessError


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in root.rglob('*') if p.is_file() and tree.STATE_DIR not in p.parts}


def test_prepare_applies_overlay_and_patches(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    assert (prepared.path / 'mm/grouped_pages.c').read_bytes() == \
        (repo_copy / 'kernel/mm/grouped_pages.c').read_bytes()
    assert (prepared.path / 'mm/grouped_pages_kunit.c').is_file()
    assert 'config GROUPED_PAGES\n' in (prepared.path / 'mm/Kconfig').read_text()
    assert 'grouped_pages.o' in (prepared.path / 'arch/x86/mm/Makefile').read_text()
    # Harness files of kunit/ are not kernel files.
    assert not (prepared.path / '.kunitconfig').exists()
    assert prepared.base.version == 'v6.12-test'
    assert prepared.base.origin['commit'] == git(kernel_git, 'rev-parse', 'HEAD')


def test_kernel_src_is_never_modified(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    before = mtimes(kernel_git)
    tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    assert git(kernel_git, 'status', '--porcelain') == ''
    assert mtimes(kernel_git) == before


def test_prepare_twice_changes_nothing(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    first = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    before = mtimes(first.path)
    again = tree.Tree(first.path, first.base)
    assert again.sync(repo_copy) == []
    assert mtimes(first.path) == before


def test_editing_one_file_touches_only_it(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    before = mtimes(prepared.path)
    source = repo_copy / 'kernel/mm/grouped_pages.c'
    source.write_text(source.read_text() + '/* edited */\n')
    changed = tree.Tree(prepared.path, prepared.base).sync(repo_copy)
    assert changed == ['mm/grouped_pages.c']
    after = mtimes(prepared.path)
    assert {f for f in before if before[f] != after[f]} == {'mm/grouped_pages.c'}


def test_dropping_a_patch_restores_the_base(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    for patch in (repo_copy / 'kernel/patches').glob('*.patch'):
        patch.unlink()
    (repo_copy / 'kernel/mm/grouped_pages.c').unlink()
    tree.Tree(prepared.path, prepared.base).sync(repo_copy)
    assert (prepared.path / 'mm/Kconfig').read_bytes() == (kernel_git / 'mm/Kconfig').read_bytes()
    assert not (prepared.path / 'mm/grouped_pages.c').exists()


def test_patch_that_does_not_apply_names_patch_file_and_base(kernel_git: Path, repo_copy: Path,
                                                            tmp_path: Path) -> None:
    kconfig = kernel_git / 'mm/Kconfig'
    kconfig.write_text(kconfig.read_text().replace('other kernel page tables.', 'other page tables.'))
    git(kernel_git, 'commit', '-q', '-am', 'move the context')
    with pytest.raises(HarnessError) as err:
        tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    message = str(err.value)
    assert '0001-mm-grouped-pages-Kconfig-and-Makefiles.patch' in message
    assert 'mm/Kconfig' in message
    assert 'v6.12-test' in message


@pytest.mark.parametrize('setup, expected', [
    ('missing', 'does not exist'),
    ('empty', 'is not a kernel tree'),
    ('not-git', 'is not a git work tree'),
])
def test_bad_kernel_src(setup: str, expected: str, real_kernel_files: Path, repo_copy: Path,
                        tmp_path: Path) -> None:
    src = tmp_path / 'src'
    if setup == 'empty':
        src.mkdir()
    elif setup == 'not-git':
        import shutil
        shutil.copytree(real_kernel_files, src)
    with pytest.raises(HarnessError) as err:
        tree.prepare(repo_copy, tmp_path / 'work', str(src))
    assert expected in str(err.value)
    assert err.value.status == 2


def test_missing_tarball_says_what_to_do(repo_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match='make deps'):
        tree.prepare(repo_copy, tmp_path / 'work', None, tmp_path / 'no-such.tar.xz')


def test_debian_base_prepares_idempotently() -> None:
    """The real base: the whole Debian tree, prepared in the shared work directory."""
    work = Path(os.environ.get('GP_WORK') or Path.home() / '.cache/grouped-pages')
    prepared = tree.prepare(REPO, work)
    assert prepared.base.version.startswith('6.12.')
    assert prepared.base.origin['package'].startswith('linux-source-6.12 ')
    assert tree.Tree(prepared.path, prepared.base).sync(REPO) == []


def test_cli_rejects_unknown_arch_and_config(tmp_path: Path) -> None:
    env = {**os.environ, 'PYTHONPATH': str(REPO / 'ci'), 'GP_WORK': str(tmp_path)}
    for args, expected in ((['--arch=arm64'], "unknown ARCH='arm64': valid are um, x86_64, i386"),
                           (['--config=nope'], "unknown CONFIG='nope'"),
                           (['--arch=um', '--config=highmem'], 'CONFIG=highmem is for ARCH=i386')):
        proc = subprocess.run(['/usr/bin/python3', '-m', 'gptool', 'kunit', *args],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 2
        assert expected in proc.stderr
        assert 'Traceback' not in proc.stderr


def test_an_empty_extraversion_does_not_take_the_next_line(tmp_path: Path) -> None:
    # The layout of 6.12's Makefile: EXTRAVERSION is empty and NAME follows.
    (tmp_path / 'Makefile').write_text('VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n'
                                       'EXTRAVERSION =\nNAME = Baby Opossum Posse\n')
    assert tree.kernel_version(tmp_path) == '6.12.117'
    (tmp_path / 'Makefile').write_text('VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n'
                                       'EXTRAVERSION = -rc7\nNAME = x\n')
    assert tree.kernel_version(tmp_path) == '6.12.0-rc7'


def test_the_real_base_version_is_read_right(real_kernel_files: Path) -> None:
    assert re.fullmatch(r'6\.12\.\d+', tree.kernel_version(real_kernel_files))


class Interrupted(BaseException):
    """What a ^C or a killed make looks like to the code it interrupts."""


@pytest.mark.parametrize('writes_before_kill', [1, 3, 6])
def test_a_sync_killed_half_way_recovers_by_itself(writes_before_kill: int, kernel_git: Path,
                                                   repo_copy: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = tree.write_atomic
    writes = 0

    def dying_write(*args: object, **kwargs: object) -> None:
        nonlocal writes
        writes += 1
        if writes > writes_before_kill:
            raise Interrupted()
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tree, 'write_atomic', dying_write)
    with pytest.raises(Interrupted):
        tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    monkeypatch.setattr(tree, 'write_atomic', real_write)
    recovered = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    fresh = tree.prepare(repo_copy, tmp_path / 'fresh', str(kernel_git))
    assert mtimes(recovered.path).keys() == mtimes(fresh.path).keys()
    for rel in mtimes(fresh.path):
        assert (recovered.path / rel).read_bytes() == (fresh.path / rel).read_bytes(), rel
    # And it still knows the base: dropping our files gives the pristine tree back.
    for patch in (repo_copy / 'kernel/patches').glob('*.patch'):
        patch.unlink()
    tree.Tree(recovered.path, recovered.base).sync(repo_copy)
    assert (recovered.path / 'mm/Kconfig').read_bytes() == (kernel_git / 'mm/Kconfig').read_bytes()


def test_an_extraction_killed_half_way_is_redone_and_its_copy_removed(
        kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    # What `kill -9` during the first `make tree` leaves: a half-extracted copy, no base.json.
    first = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    root = first.path.parent
    (root / 'base.json').unlink()
    (root / '.extract-killed').mkdir()
    (root / '.extract-killed' / 'Makefile').write_text('half')
    (first.path / 'mm/Kconfig').write_text('half')
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    assert sorted(p.name for p in root.iterdir()) == ['base.json', 'linux']
    assert 'config GROUPED_PAGES\n' in (prepared.path / 'mm/Kconfig').read_text()


def test_a_cold_extraction_keeps_stdout_for_the_path(kernel_git: Path, repo_copy: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # `cd "$(make -s tree)"` must work on the first run too: progress goes to stderr.
    tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    out, err = capsys.readouterr()
    assert out == ''
    assert 'tree: extracting' in err

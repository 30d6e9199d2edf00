"""The planted bugs must keep applying to the code they break, and name a real test.

ci/planted-bug.sh shows that each bug fails the test its patch names; that takes a
kernel build, so `make test` at least checks here that the script could still run.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PATCHES = sorted((REPO / 'ci/planted-bugs').glob('*.patch'))
SELFTEST = REPO / 'selftests/grouped_pages/gp_stress.c'
BENCH = REPO / 'selftests/grouped_pages/gp_bench.c'
# The KUnit suites a planted bug may name, and their sources.
KUNIT = {'grouped_pages': REPO / 'kunit/mm/grouped_pages_kunit.c',
         'pks_pgtables': REPO / 'kunit/arch/x86/mm/pks_pgtables_kunit.c'}


def test_there_are_planted_bugs() -> None:
    assert PATCHES


@pytest.mark.parametrize('patch', PATCHES, ids=lambda p: p.stem)
def test_planted_bug_applies_to_the_current_code(patch: Path) -> None:
    check = subprocess.run(['patch', '--dry-run', '-p1', '--force', '-F0', '-d', str(REPO),
                            '-i', str(patch)], capture_output=True, text=True)
    assert check.returncode == 0, f'{patch.name} no longer applies:\n{check.stdout}'


@pytest.mark.parametrize('patch', PATCHES, ids=lambda p: p.stem)
def test_planted_bug_names_an_existing_test(patch: Path) -> None:
    text = patch.read_text()
    selftest = re.search(r'Expected: selftests gp\.(\w+) fails', text)
    bench = re.search(r'Expected: bench (frag\.\w+\.n\d+\.\w+\.(\w+)|[\w.]+) regression', text)
    kunit = re.search(r'Expected: kunit (grouped_pages|pks_pgtables)\.(\w+) fails', text)
    row = re.search(r'Expected: row ([\w-]+) fails with "[^"]+"', text)
    assert selftest or bench or kunit or row, (
        f'{patch.name} has no "Expected: selftests gp.NAME fails", '
        '"Expected: kunit grouped_pages.CASE fails" (or pks_pgtables.CASE), '
        '"Expected: row ROW fails with \"TEXT\"" '
        'or "Expected: bench METRIC regression" line')
    if row:
        rows = {'-'.join(line.split()) for line in (REPO / 'ci/matrix').read_text().splitlines()
                if line.strip() and not line.startswith('#')}
        assert row.group(1) in rows, f'{patch.name} names row {row.group(1)}, not in ci/matrix'
    if kunit:
        assert re.search(rf'KUNIT_CASE\w*\({kunit.group(2)}\b', KUNIT[kunit.group(1)].read_text())
        config = re.search(r'Expected: kunit [\w.]+ fails under CONFIG=([\w-]+)', text)
        if config:
            assert (REPO / 'configs' / f'{config.group(1)}.config').is_file(), (
                f'{patch.name} names CONFIG={config.group(1)}, not in configs/')
    elif selftest:
        assert re.search(rf'TEST_F(_TIMEOUT)?\(gp, {selftest.group(1)}\b', SELFTEST.read_text())
    elif bench:
        # Fragmentation metrics are named frag.<prot>.n<pages>.<mode>.<what> at run time.
        what = bench.group(2) or bench.group(1)
        assert f'"{what}"' in BENCH.read_text()


IN_PATCHES = [p for p in PATCHES if '+++ b/kernel/patches/' in p.read_text()]


@pytest.mark.parametrize('patch', IN_PATCHES, ids=lambda p: p.stem)
def test_planted_bug_in_a_patch_leaves_a_series_that_applies(patch: Path, tmp_path: Path,
                                                             real_kernel_files: Path) -> None:
    """A bug planted in one of kernel/patches/ must leave every later patch applying, or
    ci/planted-bug.sh fails at preparing the tree instead of at the test it names."""
    patches = tmp_path / 'patches'
    shutil.copytree(REPO / 'kernel/patches', patches)
    subprocess.run(['patch', '-s', '-p3', '-d', str(patches), '-i', str(patch)], check=True)
    linux = tmp_path / 'linux'
    shutil.copytree(real_kernel_files, linux)
    for series_patch in sorted(patches.glob('*.patch')):
        applied = subprocess.run(['git', 'apply', '--whitespace=nowarn', str(series_patch)],
                                 cwd=linux, capture_output=True, text=True)
        assert applied.returncode == 0, (
            f'with {patch.name} planted, {series_patch.name} no longer applies:\n{applied.stderr}')

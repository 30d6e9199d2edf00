"""GitLab CI validated for real: gitlab-ci-local (4.60.0, shell executor: no Docker here)
lists every job of .gitlab-ci.yml and runs the lint jobs green on a copy of this tree.

The pytest job itself is left out when this runs inside a CI job (CI_JOB_NAME is set
there): it would run this test again, inside itself."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, git, working_copy

LINT_JOBS = ('shellcheck', 'checkpatch', 'pytest')


@pytest.fixture(scope='module')
def ci_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree as it is now (uncommitted edits too), as a git repo with a remote."""
    if not shutil.which('gitlab-ci-local'):
        pytest.fail('gitlab-ci-local is missing: run `make deps` (it installs 4.60.0 from npm)')
    copy = working_copy(tmp_path_factory.mktemp('ci') / 'repo')
    git(copy, 'remote', 'set-url', 'origin', 'https://gitlab.example.com/kernel/grouped-pages.git')
    return copy


def run_ci(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    work = os.environ.get('GP_WORK') or str(Path.home() / '.cache/grouped-pages')
    # The lint jobs' kernel tree is this machine's, not a cold one in the copy.
    return subprocess.run(['gitlab-ci-local', '--force-shell-executor',
                           '--variable', f'GP_WORK={work}',
                           '--variable', f'CCACHE_DIR={work}/ccache', *args],
                          cwd=copy, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_every_job_is_listed(ci_copy: Path) -> None:
    listed = run_ci(ci_copy, '--list')
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert 'json schema validated' in listed.stderr
    names = re.findall(r'^([\w-]+(?:: \[[^\]]+\])?)\s', listed.stdout, re.M)
    matrix = [line.split() for line in (REPO / 'ci/matrix').read_text().splitlines()
              if line.strip() and not line.startswith('#')]
    expected = set(LINT_JOBS)
    expected |= {f'kunit: [{arch},{config},{cpu}]' for arch, config, cpu in matrix
                 if arch != 'selftests'}
    expected |= {f'selftests: [{config},{cpu}]' for arch, config, cpu in matrix
                 if arch == 'selftests'}
    assert expected <= set(names), sorted(expected - set(names))


@pytest.mark.slow
def test_lint_jobs_run_green(ci_copy: Path) -> None:
    jobs = [job for job in LINT_JOBS if not (job == 'pytest' and os.environ.get('CI_JOB_NAME'))]
    for job in jobs:
        ran = run_ci(ci_copy, job)
        assert ran.returncode == 0 and f'PASS  {job}' in ran.stdout, \
            f'{job}:\n{ran.stdout[-3000:]}\n{ran.stderr[-2000:]}'


def test_jobs_exit_with_the_harness_status_and_act_on_it() -> None:
    """make says 2 for every failure: jobs run their target through ci/status.sh, retry
    only when the harness or the machine failed (4) and let an inconclusive compare (3)
    warn instead of failing."""
    config = yaml.safe_load((REPO / '.gitlab-ci.yml').read_text())
    assert config['default']['retry'] == {'max': 1, 'exit_codes': [4]}
    jobs = {name: job for name, job in config.items() if isinstance(job, dict) and 'script' in job}
    assert set(LINT_JOBS) | {'kunit', 'selftests', 'compare'} <= jobs.keys()
    for name, job in jobs.items():
        for line in job['script']:
            assert line.startswith('bash ci/status.sh '), (name, line)
            assert line.split()[2] == name, (name, line)
    assert jobs['compare']['allow_failure'] == {'exit_codes': [3]}
    assert all('allow_failure' not in job for name, job in jobs.items() if name != 'compare')

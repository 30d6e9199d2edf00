"""What a result records of where it came from: our commit, the kernel base, the
configuration, the tools and the date, so that it can be reproduced and compared."""
import datetime
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from .tree import Tree


def _run(*cmd: str) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True)
    except FileNotFoundError:
        return ''
    return proc.stdout.strip() if proc.returncode == 0 else ''


def repo_commit(repo: Path) -> dict[str, str | bool]:
    """HEAD of our repo and whether the work tree differs from it (untracked files too:
    a new source file changes what is built even before it is added). When it does,
    diff_sha256 names the uncommitted state, so runs of different edits of one commit
    are never taken for reruns of the same code."""
    commit = _run('git', '-C', str(repo), 'rev-parse', 'HEAD')
    status = _run('git', '-C', str(repo), 'status', '--porcelain', '--untracked-files=all',
                  '--', '.', ':!results')
    meta: dict[str, str | bool] = {'commit': commit or 'uncommitted', 'dirty': bool(status)}
    if status:
        digest = hashlib.sha256(_run('git', '-C', str(repo), 'diff', 'HEAD', '--', '.',
                                     ':!results').encode())
        for line in sorted(status.splitlines()):
            if line.startswith('?? '):
                path = repo / line[3:]
                digest.update(line.encode())
                if path.is_file():
                    digest.update(path.read_bytes())
        meta['diff_sha256'] = digest.hexdigest()
    return meta


def base_meta(tree: Tree) -> dict[str, str]:
    """What a result records of the kernel base it was built from."""
    return {'key': tree.base.key, 'version': tree.base.version, **tree.base.origin}


def config_sha256(dotconfig: Path) -> str:
    """A hash of the final .config, whole: "# CONFIG_X is not set" lines count too."""
    return hashlib.sha256(dotconfig.read_bytes()).hexdigest()


def _first_version(text: str) -> str:
    line = text.splitlines()[0] if text else ''
    match = re.search(r'\d+\.\d+(\.\d+)?\S*', line)
    return match.group(0) if match else (line or 'not found')


def tool_versions() -> dict[str, str]:
    """gcc, QEMU, ccache, Debian, Python, scipy and busybox versions (and the CI image):
    each changes what a build, a timing or a verdict produces."""
    try:
        debian = Path('/etc/debian_version').read_text().strip()
    except OSError:
        debian = 'not Debian'
    versions = {'gcc': _first_version(_run('gcc', '--version')),
                'qemu': _first_version(_run('qemu-system-x86_64', '--version')),
                'ccache': _first_version(_run('ccache', '--version')) if shutil.which('ccache')
                else 'not installed',
                'debian': debian,
                'python': platform.python_version(),
                'scipy': _package_version('scipy'),
                # The initramfs's busybox: its shell and tools run every guest.
                'busybox': _first_version(_run('/bin/busybox')) if Path('/bin/busybox').is_file()
                else 'not installed'}
    # The container image GitLab ran the job in (.gitlab-ci.yml pins it).
    if os.environ.get('CI_JOB_IMAGE'):
        versions['image'] = os.environ['CI_JOB_IMAGE']
    return versions


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'


def host() -> dict[str, str]:
    """The machine a run's timing depends on: its name, CPU model and kernel."""
    try:
        cpuinfo = Path('/proc/cpuinfo').read_text()
    except OSError:
        cpuinfo = ''
    model = re.search(r'^model name\s*:\s*(.+)$', cpuinfo, re.M)
    uname = os.uname()
    return {'hostname': uname.nodename, 'cpu': model.group(1).strip() if model else uname.machine,
            'kernel': uname.release}


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso_date(moment: datetime.datetime | None = None) -> str:
    return (moment or utc_now()).strftime('%Y-%m-%dT%H:%M:%SZ')


def result_name(arch: str, config: str, meta: dict[str, object], *suffix: str) -> str:
    """<UTC time>-<commit12>-<arch>-<config>[-<suffix>...]: sorts by time, names the run."""
    stamp = utc_now().strftime('%Y%m%dT%H%M%SZ')
    return '-'.join([stamp, str(meta['commit'])[:12], arch, config, *suffix])

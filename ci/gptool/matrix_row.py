"""One row of `make matrix`, here or on a host: run it, keep its log, and record what
it came to in <out>/<row>.json, the file the matrix table is made from.

The row is `make kunit` (or `make selftests`) in this checkout. GP_OUTCOME asks gptool
for the kind of failure; a row whose make ended without one (ci/deps could not install,
the harness crashed) is the machine's or the harness's fault: infrastructure. The exit
status says only whether the row reached a verdict: 0 when it did (passed or failed),
EXIT_STATUS[INFRASTRUCTURE] when it did not, so GNU parallel --retries tries it on
another host and never retries a real test failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import provenance
from .errors import EXIT_STATUS, FAILURE, INFRASTRUCTURE, PASSED_KIND
from .fsutil import write_json_atomic

# A row's first line, so that the matrix's console log shows where each try ran.
TRY_MARKER = 'matrix-try:'


@dataclass(frozen=True)
class RowRequest:
    repo: Path
    work: Path
    out: Path
    arch: str
    config: str
    cpu: str
    host: str
    # Move the row's result directories into <out>/<row>/ (a host's checkout goes away).
    keep_results: bool = False

    @property
    def name(self) -> str:
        return f'{self.arch}-{self.config}-{self.cpu}'


def make_command(req: RowRequest) -> list[str]:
    if req.arch == 'selftests':
        return ['make', '--no-print-directory', 'selftests', f'CONFIG={req.config}',
                f'QEMU_CPU={req.cpu}']
    return ['make', '--no-print-directory', 'kunit', f'ARCH={req.arch}', f'CONFIG={req.config}',
            f'QEMU_CPU={req.cpu}']


def ccache_stats(env: dict[str, str]) -> dict[str, int]:
    if not shutil.which('ccache'):
        return {}
    proc = subprocess.run(['ccache', '--print-stats'], capture_output=True, text=True, env=env)
    stats = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition('\t')
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


def cache_use(before: dict[str, int], after: dict[str, int]) -> dict[str, int] | None:
    """The row's compiler calls: hits (local or remote), misses, and remote hits."""
    if not after:
        return None

    def grew(*keys: str) -> int:
        return sum(after.get(k, 0) - before.get(k, 0) for k in keys)
    return {'hits': grew('direct_cache_hit', 'preprocessed_cache_hit'),
            'misses': grew('cache_miss'), 'remote_hits': grew('remote_storage_hit'),
            'remote_errors': grew('remote_storage_error', 'remote_storage_timeout')}


def result_dirs(req: RowRequest) -> set[Path]:
    """This row's result directories: results/<kunit|selftests>/<time>-<commit>-<arch>-
    <config>[-<cpu>][.N], as the verbs name them (another row may run in this checkout)."""
    kind, arch = ('selftests', 'x86_64') if req.arch == 'selftests' else ('kunit', req.arch)
    suffix = '' if req.cpu == 'max' or req.arch == 'um' else f'-{req.cpu}'
    name = re.compile(rf'.*-{re.escape(arch)}-{re.escape(req.config + suffix)}(\.\d+)?')
    return {d for d in (req.repo / 'results' / kind).glob('*')
            if d.is_dir() and name.fullmatch(d.name)}


def outcome_of(path: Path, status: int) -> tuple[str, str]:
    """(kind, message) of the row from gptool's outcome file and make's exit status."""
    try:
        outcome = json.loads(path.read_text())
    except (OSError, ValueError):
        outcome = None
    if outcome and outcome.get('status') == status and status != 0:
        return str(outcome.get('kind') or FAILURE), str(outcome.get('message') or '')
    if status == 0:
        return PASSED_KIND, ''
    return INFRASTRUCTURE, (f'make exited with status {status} before gptool gave a verdict '
                            '(ci/deps, make or the harness itself failed: see the log)')


def run(req: RowRequest) -> int:
    log_path = req.out / f'{req.name}.log'
    req.out.mkdir(parents=True, exist_ok=True)
    started_at = time.strftime('%H:%M:%S', time.gmtime())
    print(f'{TRY_MARKER} {req.name} on {req.host}, started at {started_at} UTC', flush=True)
    env = {**os.environ, 'GP_WORK': str(req.work),
           'CCACHE_DIR': os.environ.get('CCACHE_DIR') or str(req.work / 'ccache')}
    before_results = result_dirs(req)
    before = ccache_stats(env)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix='gp-row-') as tmp:
        outcome = Path(tmp) / 'outcome.json'
        with log_path.open('w') as log:
            proc = subprocess.Popen(make_command(req), cwd=req.repo, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    env={**env, 'GP_OUTCOME': str(outcome)})
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(line)
            status = proc.wait()
        kind, message = outcome_of(outcome, status)
    new = sorted(result_dirs(req) - before_results)
    results = [str(d) for d in new]
    if req.keep_results and kind != INFRASTRUCTURE:
        keep = req.out / req.name
        keep.mkdir(exist_ok=True)  # returned even when empty
        results = []
        for directory in new:
            target = keep / directory.parent.name / directory.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(directory, target)
            results.append(str(target.relative_to(req.out)))
    record = {
        'row': req.name, 'arch': req.arch, 'config': req.config, 'cpu': req.cpu,
        'host': req.host, 'status': status, 'kind': kind, 'message': message,
        **provenance.repo_commit(req.repo), 'date': provenance.iso_date(),
        'duration_s': round(time.time() - started, 1),
        'cache': cache_use(before, ccache_stats(env)), 'results': results,
    }
    write_json_atomic(req.out / f'{req.name}.json', record)
    return EXIT_STATUS[INFRASTRUCTURE] if kind == INFRASTRUCTURE else 0

"""Compare the bench results of two sides, A (before) and B (after), metric by metric.

A side is either stored results (a result directory, or a directory of them such as
results/bench or the A/ of an earlier compare report: all its runs are pooled), or a
git revision of the repo. A revision is checked out in a detached worktree under
GP_WORK/worktrees (the user's checkout is never touched), built once with the bench
verb of this checkout's harness, then benched RUNS times, the runs of A and B
interleaved (A B B A ...) so that a slow spell of the host hits both sides alike.

The statistics and the verdict rule are in stats.py. A timed metric contributes one
sample per run, the median of its rounds: the rounds of one boot share its memory layout
and host load, so treating them as independent would make p far too small. Exact
(deterministic) metrics compare all their values. What each verdict rests on (BASES),
and the false-discovery control over the table, are below. The table goes to stdout;
the report (report.json, report.md, and copies of the results of both sides) to a new
directory results/compare/<time>-<a>-vs-<b>/. Exit status 1 if a metric regressed, else
3 if a change is inconclusive (significant alone, not over the table), else 0.
"""
import datetime
import json
import math
import re
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import benchstore, compare_report, stats
from .revisions import (HARNESS_CI, Clock, ensure_worktree, harness_command, last_error,
                        resolve_rev, run_logged)
from .errors import (FAILED, INCONCLUSIVE, INFRASTRUCTURE, PASSED, USAGE_ERROR,
                     HarnessError)
from .fsutil import publish_dir, write_json_atomic

RESULT_LINE = re.compile(r'^bench result: (.+?)\s*$', re.M)
# Runs a side when A or B is a revision: with 8 against 8, one metric that moves alone
# (every run of B beyond every run of A: p = 2 / C(16, 8) = 0.00016) passes the
# false-discovery control over up to 300 metrics; with 5 against 5 (p = 0.0079) over 6.
DEFAULT_RUNS = 8
MODES = benchstore.MODES
# What must match for two results to be comparable; the commit may differ between
# sides (that is the point) but not within one side.
COMPARABLE = benchstore.SETUP
# What the timings depend on besides the code: the machine and the tools (recorded by
# the bench verb since issue 24; absent from older results on both sides alike).
MACHINE = ('host.hostname', 'host.cpu', 'host.kernel', 'tools.qemu', 'tools.gcc',
           'tools.python', 'tools.busybox')


@dataclass
class CompareRequest:
    repo: Path
    work: Path
    a: str
    b: str
    runs: int
    alpha: float
    min_effect: float
    config: str
    mode: str
    qemu_cpu: str
    smp: int
    memory_mb: int
    results: Path
    force: bool = False
    workload: str = 'full'
    cmdline: str = ''


@dataclass
class Side:
    label: str  # 'A' or 'B'
    spec: str
    sha: str | None = None  # set for the revision form
    results: list[benchstore.BenchResult] = field(default_factory=list)

    @property
    def form(self) -> str:
        return 'rev' if self.sha else 'results'

    def commits(self) -> list[str]:
        return list(dict.fromkeys(str(r['commit']) for r in self.results))

    def short(self) -> str:
        commits = self.commits()
        return commits[0][:12] if len(commits) == 1 else 'mixed'

    def describe(self) -> str:
        dirty = any(r['dirty'] for r in self.results)
        commits = ', '.join(c[:12] for c in self.commits()) + (' +dirty' if dirty else '')
        runs = len(self.results)
        return f'{self.label} = {self.spec} ({commits}; {runs} run{"s" if runs != 1 else ""})'


# ---------------------------------------------------------------- revisions

def run_bench(harness: list[str], bench: list[str], log: Path, what: str) -> str:
    """Run one bench command of this harness; its output, or HarnessError with the status
    and kind of the run's own failure (a revision that does not build fails compare as
    it fails bench; a broken machine is the harness's failure, not the revision's)."""
    outcome = log.with_suffix('.outcome.json')
    status, output = run_logged(harness + ['--outcome', str(outcome)] + bench, log)
    if status == 0:
        return output
    try:
        kind = str(json.loads(outcome.read_text())['kind'])
    except (OSError, ValueError, KeyError, TypeError):
        kind = INFRASTRUCTURE  # it did not even say how it ended (killed?)
    raise HarnessError(f'compare: {what} failed with status {status}: {last_error(output)} '
                       f'(log: {log})', status if status in (FAILED, USAGE_ERROR) else None,
                       kind if kind != 'passed' else INFRASTRUCTURE)


def interleaved(revs: list[Side], runs: int) -> list[Side]:
    """A B B A A B ...: each side goes first as often as the other, so that a host that
    drifts during the compare, or a first boot after a build, favours neither."""
    return [side for number in range(runs) for side in (revs if number % 2 == 0 else revs[::-1])]


def bench_revisions(req: CompareRequest, sides: list[Side], clock: Clock, logs: Path) -> None:
    """Build each revision side once, then run them interleaved RUNS times each."""
    revs = [side for side in sides if side.sha]
    prefixes: dict[str, tuple[list[str], list[str], Path]] = {}
    for side in revs:
        assert side.sha
        if side.sha in prefixes:
            continue
        worktree, reused = ensure_worktree(req.repo, req.work, side.sha)
        clock.say(f'{side.label} ({side.sha[:12]}) worktree {worktree}'
                  f'{" (reused)" if reused else ""}')
        # The machine options go to the runs too: a run boots with what it is told.
        harness = harness_command(worktree, req.work)
        bench = [
            'bench', '--config', req.config, '--mode', req.mode, '--qemu-cpu', req.qemu_cpu,
            '--smp', str(req.smp), '--memory', str(req.memory_mb), '--workload', req.workload,
            '--cmdline', req.cmdline]
        artifacts = req.work / 'compare-artifacts' / f'{side.sha[:12]}-{req.config}-{req.mode}'
        log = logs / f'{side.label}-build.log'
        clock.say(f'{side.label} ({side.sha[:12]}) build... (log: {log})')
        run_bench(harness, bench + ['--build-only', '--artifacts', str(artifacts)], log,
                  f'building {side.label}={side.spec} ({side.sha[:12]})')
        prefixes[side.sha] = (harness, bench, artifacts)
    order = interleaved(revs, req.runs)
    for number, side in enumerate(order, 1):
        assert side.sha
        harness, bench, artifacts = prefixes[side.sha]
        log = logs / f'run-{number:02d}-{side.label}.log'
        clock.say(f'run {number}/{len(order)}: {side.label} ({side.sha[:12]})')
        where = f'run {number}/{len(order)} of {side.label}={side.spec} ({side.sha[:12]})'
        output = run_bench(harness, bench + ['--artifacts', str(artifacts),
                                             '--results', str(req.results)], log, where)
        found = RESULT_LINE.findall(output)
        if not found:
            raise HarnessError(f'compare: {where} printed no "bench result: <path>" line '
                               f'(log: {log})', kind=INFRASTRUCTURE)
        path = Path(found[-1])
        side.results.append(benchstore.load(HARNESS_CI.parent / path))  # cwd of the run


# ---------------------------------------------------------------- comparability

def differences(first: dict[str, Any], second: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if benchstore.field_value(first, name) != benchstore.field_value(second, name)]


def check_within(side: Side) -> list[str]:
    """Problems pooling the runs of one side: they must be of one commit and one setup."""
    problems = []
    for name in ('commit', 'dirty', 'diff_sha256') + COMPARABLE + MACHINE:
        values = list(dict.fromkeys(json.dumps(benchstore.field_value(r, name)) for r in side.results))
        if len(values) > 1:
            problems.append(f'{side.label} pools runs that differ in {name} ({", ".join(values)})')
    return problems


def check_across(a: Side, b: Side) -> list[str]:
    ra, rb = a.results[0], b.results[0]
    return [f'{name} (A: {json.dumps(benchstore.field_value(ra, name))}, '
            f'B: {json.dumps(benchstore.field_value(rb, name))})'
            for name in differences(ra, rb, COMPARABLE + MACHINE)]


def check_against_request(stored: Side, req: CompareRequest) -> list[str]:
    """Before benching a revision: would its runs match the stored results of the other side?"""
    wanted = {'config': req.config, 'mode': req.mode, 'qemu.cpu': req.qemu_cpu,
              'qemu.smp': req.smp, 'qemu.memory_mb': req.memory_mb, 'workload': req.workload,
              'cmdline': req.cmdline}
    option = {'config': '--config', 'mode': '--mode', 'qemu.cpu': '--qemu-cpu',
              'qemu.smp': '--smp', 'qemu.memory_mb': '--memory', 'workload': '--workload',
              'cmdline': '--cmdline'}
    result = stored.results[0]
    return [f'{name} ({stored.label} holds {json.dumps(benchstore.field_value(result, name))}, the revision '
            f'would run with {option[name]} {value})'
            for name, value in wanted.items() if benchstore.field_value(result, name) != value]


def enforce(problems: list[str], force: bool, what: str) -> None:
    if not problems:
        return
    if not force:
        raise HarnessError(f'{what}: {"; ".join(problems)} (pass --force to compare anyway)', 2)
    print(f'warning: {what}: {"; ".join(problems)}; comparing anyway (--force)', flush=True)


# ---------------------------------------------------------------- statistics

@dataclass
class Pooled:
    unit: str
    direction: str
    deterministic: bool
    samples: list[float]
    min_effect_pct: float | None
    description: str
    # One value per run, its median: rounds of one boot share that boot's state
    # (memory layout, host load), so the run, not the round, is the sample.
    run_medians: list[float] = field(default_factory=list)


def pool(side: Side) -> tuple[dict[str, Pooled], dict[str, str]]:
    """Each metric's samples of all runs of a side, concatenated in run order; and the
    metrics whose runs disagree on what they measure, with why."""
    pooled: dict[str, Pooled] = {}
    notes: dict[str, str] = {}
    for result in side.results:
        for name, metric in result['metrics'].items():
            effect = metric.get('min_effect_pct')
            if name not in pooled:
                pooled[name] = Pooled(metric['unit'], metric['direction'], metric['deterministic'],
                                      list(metric['samples']), effect, metric.get('description', ''),
                                      [statistics.median(metric['samples'])])
                continue
            seen = pooled[name]
            if (seen.unit, seen.direction) != (metric['unit'], metric['direction']):
                notes[name] = (f'{name}: the runs of {side.label} disagree on its unit or '
                               f'direction ({seen.unit}, {seen.direction} is better; '
                               f'{metric["unit"]}, {metric["direction"]} is better)')
            seen.samples += metric['samples']
            seen.run_medians.append(statistics.median(metric['samples']))
            seen.deterministic = seen.deterministic and metric['deterministic']
            if effect is not None:
                seen.min_effect_pct = max(effect, seen.min_effect_pct or 0)
    return pooled, notes


# Timed units: under TCG they are host wall-clock time, which drifts between boots.
TIMED_UNIT = re.compile(r'^(ns|us|ms|s)(/|$)')
# A within-boot ratio (grouped / baseline of one boot): the host's drift cancels out.
RATIO_UNIT = 'x'
# Under TCG the run medians of one build spread 61% (up to 110%) from boot to boot,
# and HEAD~1 against HEAD of one kernel moved by +28% and +39%: a wall-clock change is
# called only when the medians differ by this factor as well.
WALL_CLOCK_MIN_FOLD = 2.0
# icount timings count instructions and repeat within 1-2% (median 0.3%): the 10% that
# timed metrics declare for TCG's sake would hide real changes; at most this many %.
ICOUNT_MIN_EFFECT_PCT = 5.0
BASES = {
    'exact': 'deterministic, the same on every run: any change is real',
    'count': 'a count that varies from boot to boot: rank test',
    'ratio': 'a ratio within one boot: the host drift cancels out; rank test',
    'icount': f'an icount timing (instructions): rank test, min effect at most '
              f'{ICOUNT_MIN_EFFECT_PCT:g}%',
    'wall clock': f'a TCG wall-clock timing: rank test, and at least {WALL_CLOCK_MIN_FOLD:g}x',
}


def basis(unit: str, mode: str, exact: bool) -> str:
    """What a metric's verdict rests on: one of BASES."""
    if exact:
        return 'exact'
    if unit == RATIO_UNIT:
        return 'ratio'
    if TIMED_UNIT.match(unit):
        return 'icount' if mode == 'icount' else 'wall clock'
    return 'count'


def runs_needed(metrics: int, alpha: float) -> int:
    """The fewest runs a side with which one metric that moves alone (every run of B
    beyond every run of A) passes the false-discovery control over @metrics."""
    runs = stats.MIN_SAMPLES
    while stats.smallest_p(runs, runs) > alpha / max(metrics, 1):
        runs += 1
    return runs


def compare_sides(a: Side, b: Side, req: CompareRequest) -> dict[str, Any]:
    """Per-metric comparisons, and notes on metrics that could not be compared."""
    pooled_a, notes_a = pool(a)
    pooled_b, notes_b = pool(b)
    inconsistent = {**notes_b, **notes_a}
    notes = list(inconsistent.values())
    # Under TCG (on either side, when forced) timings are the host's wall clock.
    mode = 'tcg' if 'tcg' in {r['mode'] for r in a.results + b.results} else 'icount'
    rows: dict[str, dict[str, Any]] = {}
    for name in sorted(pooled_a.keys() & pooled_b.keys()):
        ma, mb = pooled_a[name], pooled_b[name]
        if name in inconsistent:
            continue
        if (ma.unit, ma.direction) != (mb.unit, mb.direction):
            notes.append(f'{name}: A and B disagree on its unit or direction (A: {ma.unit}, '
                         f'{ma.direction} is better; B: {mb.unit}, {mb.direction} is better)')
            continue
        declared = [e for e in (ma.min_effect_pct, mb.min_effect_pct) if e is not None]
        min_effect = max(declared) if declared else req.min_effect
        deterministic = ma.deterministic and mb.deterministic
        # Deterministic metrics compare every sample (stats judges one that varies as
        # measured); the others one median per run, the rounds of a boot being one sample.
        compared_a, compared_b = (ma.samples, mb.samples) if deterministic else \
            (ma.run_medians, mb.run_medians)
        timed = TIMED_UNIT.match(ma.unit) is not None
        if timed and mode == 'icount':
            min_effect = min(min_effect, ICOUNT_MIN_EFFECT_PCT)
        comparison = stats.compare_metric(
            compared_a, compared_b, deterministic=deterministic, direction=ma.direction,
            alpha=req.alpha, min_effect_pct=min_effect,
            min_fold=WALL_CLOCK_MIN_FOLD if timed and mode == 'tcg' else None)
        rows[name] = {'unit': ma.unit, 'direction': ma.direction,
                      'deterministic': comparison.exact, 'declared_deterministic': deterministic,
                      'basis': basis(ma.unit, mode, comparison.exact),
                      'description': mb.description or ma.description,
                      'min_effect_pct': min_effect, 'spread_a_pct': spread_pct(compared_a),
                      'spread_b_pct': spread_pct(compared_b), 'samples_a': ma.samples,
                      'samples_b': mb.samples, 'run_medians_a': ma.run_medians,
                      'run_medians_b': mb.run_medians, **comparison.to_json()}
    # Notes so far name metrics that could not be compared.
    notes = [f'not compared: {note}' for note in notes]
    # One table tests every measured metric at once: control the false discoveries. A
    # change that is significant alone but not over the table is inconclusive.
    tested = {name: row['p_value'] for name, row in rows.items()
              if not row['deterministic'] and row['p_value'] is not None}
    survivors = stats.benjamini_hochberg(tested, req.alpha)
    for name, row in rows.items():
        if name in tested and name not in survivors and row['verdict'] in ('regression',
                                                                          'improvement'):
            row['reason'] = (f'p={row["p_value"]:.3g} does not survive false-discovery control '
                             f'over {len(tested)} metrics (Benjamini-Hochberg, q={req.alpha:g}): '
                             f'inconclusive, run more; was a {row["verdict"]}: {row["reason"]}')
            row['verdict'], row['why'] = 'inconclusive', stats.WHY_FDR
    runs = min((min(row['n_a'], row['n_b']) for name, row in rows.items() if name in tested),
               default=0)
    needed = runs_needed(len(tested), req.alpha)
    if tested and runs < needed:
        notes.append(f'note: with {runs} run{"s" if runs != 1 else ""} a side, a metric that '
                     'moves alone cannot pass '
                     f'the false-discovery control over {len(tested)} metrics: it is at best '
                     f'inconclusive; {needed} runs a side can (RUNS={needed})')
    return {'metrics': rows, 'only_in_a': sorted(pooled_a.keys() - pooled_b.keys()),
            'only_in_b': sorted(pooled_b.keys() - pooled_a.keys()), 'notes': notes,
            'fdr_tested': len(tested), 'mode': mode}


def spread_pct(values: list[float]) -> float | None:
    """(max - min) / |median| in %: how far apart the values a test compares lie."""
    median = statistics.median(values)
    if median == 0:
        return 0.0 if max(values) == min(values) else None
    return abs((max(values) - min(values)) / median * 100)


def verdicts(comparison: dict[str, Any], verdict: str) -> list[str]:
    return [name for name, row in comparison['metrics'].items() if row['verdict'] == verdict]


# ---------------------------------------------------------------- output

def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def markdown_table(rows: list[list[str]]) -> str:
    def line(row: list[str]) -> str:
        return '| ' + ' | '.join(c.replace('|', '\\|') for c in row) + ' |'
    return '\n'.join([line(rows[0]), line(['---'] * len(rows[0]))] + [line(r) for r in rows[1:]])


def setup_line(result: dict[str, Any]) -> str:
    qemu = result['qemu']
    return (f'mode {result["mode"]}, config {result["config"]}, {result["arch"]}, '
            f'-cpu {qemu["cpu"]}, smp {qemu["smp"]}, {qemu["memory_mb"]} MiB'
            + (f', cmdline "{result["cmdline"]}"' if result['cmdline'] else ''))


def tail_lines(comparison: dict[str, Any]) -> list[str]:
    lines = [f'only in A: {name}' for name in comparison['only_in_a']]
    lines += [f'only in B: {name}' for name in comparison['only_in_b']]
    return lines + comparison['notes']


def rule_text(req: CompareRequest) -> str:
    return (f'regression/improvement: p < {req.alpha:g} (Mann-Whitney U, two-sided, exact, '
            'over one median per run) and |delta| >= min effect '
            f'({req.min_effect:g}% unless the metric sets its own), TCG wall-clock timings '
            f'also {WALL_CLOCK_MIN_FOLD:g}x, and p survives Benjamini-Hochberg over the table '
            '(else inconclusive); fewer than '
            f'{stats.MIN_SAMPLES} runs a side: "~"; deterministic metrics compare exactly')


def side_json(side: Side) -> dict[str, Any]:
    first = side.results[0]
    return {'spec': side.spec, 'form': side.form, 'sha': side.sha,
            'commits': side.commits(), 'dirty': sorted({bool(r['dirty']) for r in side.results}),
            'results': [str(r.result_dir) for r in side.results],
            'config': first['config'],
            'config_sha256': sorted({r['config_sha256'] for r in side.results}),
            'mode': first['mode'], 'arch': first['arch'],
            'qemu': {k: v for k, v in first['qemu'].items() if k != 'command'},
            'cmdline': first['cmdline'], 'workload': first.get('workload'),
            'base': first['base'], 'tools': first['tools'],
            'host': first.get('host'), 'harness': first.get('harness')}


def write_report(req: CompareRequest, a: Side, b: Side, comparison: dict[str, Any],
                 table: list[list[str]], problems: list[str]) -> Path:
    now = datetime.datetime.now(datetime.timezone.utc)
    report = {
        'kind': 'compare', 'schema': 1, 'date': now.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'a': side_json(a), 'b': side_json(b),
        'rule': {'alpha': req.alpha, 'min_effect_pct': req.min_effect,
                 'min_samples': stats.MIN_SAMPLES,
                 'test': 'Mann-Whitney U, two-sided, exact with mid-ranks up to '
                         f'{stats.EXACT_MAX} values',
                 'ci': 'Hodges-Lehmann interval of the shift B - A, in % of |median A|',
                 'wall_clock_min_fold': WALL_CLOCK_MIN_FOLD, 'bases': BASES,
                 'text': rule_text(req)},
        'runs_requested': req.runs, 'forced': req.force, 'incomparable': problems,
        **comparison,
        'regressions': verdicts(comparison, 'regression'),
        'inconclusive': verdicts(comparison, 'inconclusive'),
    }
    reasons = [[name, row['reason']] for name, row in comparison['metrics'].items()]
    about = [a.describe(), b.describe(), setup_line(b.results[0]), f'rule: {rule_text(req)}']
    if problems:
        about.append(f'forced despite: {"; ".join(problems)}')
    tail = tail_lines(comparison)
    markdown = [f'# compare: {a.spec} vs {b.spec}', '', *[f'- {line}' for line in about], '']
    markdown += [markdown_table(table) if len(table) > 1 else '(no metric in both sides)', '']
    if tail:
        markdown += [f'- {line}' for line in tail] + ['']
    if reasons:
        markdown += ['## Why', '', markdown_table([['metric', 'reason'], *reasons])]

    def fill(staging: Path) -> None:
        write_json_atomic(staging / 'report.json', report)
        (staging / 'report.md').write_text('\n'.join(markdown) + '\n')
        (staging / 'report.html').write_text(compare_report.render(report, about, tail))
        for side in (a, b):
            for number, result in enumerate(side.results, 1):
                # Numbered: runs from different roots may share a directory name.
                shutil.copytree(result.result_dir,
                                staging / side.label / f'{number:02d}-{result.result_dir.name}')
    return publish_dir(req.results / 'compare',
                       f'{now.strftime("%Y%m%dT%H%M%SZ")}-{a.short()}-vs-{b.short()}', fill)


# ---------------------------------------------------------------- the verb

def check_request(req: CompareRequest) -> None:
    if req.runs < 1:
        raise HarnessError(f'RUNS={req.runs}: want at least 1 run per side ({DEFAULT_RUNS} for '
                           'a metric that moves alone to pass over a whole table)', 2)
    if not 0 < req.alpha < 1:
        raise HarnessError(f'--alpha {req.alpha:g}: want a significance level between 0 and 1, '
                           'such as 0.05', 2)
    if req.min_effect <= 0:
        raise HarnessError(f'--min-effect {req.min_effect:g}: want a percentage > 0', 2)
    if req.mode not in MODES:
        raise HarnessError(f'--mode {req.mode}: valid are {", ".join(MODES)}', 2)
    if req.smp < 1 or req.memory_mb < 256:
        raise HarnessError('compare needs --smp >= 1 and --memory >= 256 (MiB)', 2)


def make_side(req: CompareRequest, label: str, spec: str) -> Side:
    if spec and Path(spec).exists():
        side = Side(label, spec)
        side.results = [benchstore.load(path) for path in benchstore.find(Path(spec))]
        return side
    return Side(label, spec, sha=resolve_rev(req.repo, spec, label,
                                            'a results directory or a git revision'))


def run(req: CompareRequest) -> int:
    check_request(req)
    # The runs happen in other directories: paths the user gave relative are made whole.
    req.results, req.work = req.results.absolute(), req.work.absolute()
    clock = Clock('compare')
    a, b = make_side(req, 'A', req.a), make_side(req, 'B', req.b)
    stored = [side for side in (a, b) if not side.sha]
    if a.sha or b.sha:
        for side in stored:
            enforce(check_against_request(side, req), req.force,
                    f'{side.label} is not comparable with what the revision would run')
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
        name = f'{stamp}-{a.sha[:12] if a.sha else "results"}-vs-{b.sha[:12] if b.sha else "results"}'
        bench_revisions(req, [a, b], clock, req.work / 'compare-logs' / name)
    problems = check_within(a) + check_within(b)
    enforce(problems, req.force, 'the runs of a side do not pool')
    across = check_across(a, b)
    if across:
        enforce([f'they differ in {", ".join(across)}'], req.force, 'A and B are not comparable')
    comparison = compare_sides(a, b, req)
    title = f'{a.describe()}  vs  {b.describe()}; {setup_line(b.results[0])}'
    table = [compare_report.header(req.alpha)] + [
        compare_report.cells(name, row) for name, row in comparison['metrics'].items()]
    print(title)
    print(text_table(table) if len(table) > 1 else '(no metric in both sides)')
    for line in tail_lines(comparison):
        print(line)
    report = write_report(req, a, b, comparison, table, problems + across)
    print(f'compare report: {report}')
    return verdict_line(comparison)


def verdict_line(comparison: dict[str, Any]) -> int:
    """Print the closing line; the exit status: 1 on a regression, else 3 when a change is
    inconclusive, else 0."""
    regressions = verdicts(comparison, 'regression')
    inconclusive = verdicts(comparison, 'inconclusive')
    improvements = verdicts(comparison, 'improvement')
    others = ', '.join(f'{len(names)} {what}' for what, names in
                       (('improvement', improvements), ('inconclusive', inconclusive)) if names)
    if regressions:
        print(f'compare: {len(regressions)} regression{"s" if len(regressions) != 1 else ""}: '
              f'{", ".join(regressions)}' + (f' ({others})' if others else ''))
        return FAILED
    if inconclusive:
        print(f'compare: no regressions, but {len(inconclusive)} inconclusive (significant '
              f'alone, not over the table; run more): {", ".join(inconclusive)}'
              + (f' ({len(improvements)} improvement)' if improvements else ''))
        return INCONCLUSIVE
    print('compare: no regressions' + (f' ({others})' if others else ''))
    return PASSED

"""Plot every bench metric over the commit history, from the stored results.

Results are grouped by what makes them comparable (arch, config, mode, QEMU CPU). In a
group the x axis is the commits in history order (git rev-list --topo-order of HEAD),
then commits HEAD does not contain, by date; a run with uncommitted changes sits just
right of its commit, its tick marked '*'. Each run is a point at its median with an
error bar from its smallest to its largest sample; a line joins the medians of all
the samples of each x position. index.html (trend_page) shows every plot on one page
with the verdicts of the last compare of its setup; index.md lists them.
"""
import datetime
import fnmatch
import importlib.util
import re
import statistics
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import benchstore, htmlpage, trend_page
from .errors import HarnessError
from .fsutil import publish_dir

# arch, config, mode, qemu cpu, workload, smp, memory, extra cmdline: what must match
# for two runs to lie on one line.
Group = tuple[str, str, str, str, str, int, int, str]


@dataclass
class TrendRequest:
    repo: Path
    results: Path
    metrics: list[str]


def history(repo: Path) -> dict[str, int]:
    """Commit -> its position in HEAD's history, oldest first; empty outside a git repo."""
    proc = subprocess.run(['git', '-C', str(repo), 'rev-list', '--topo-order', '--reverse', 'HEAD'],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    return {sha: i for i, sha in enumerate(proc.stdout.split())}


def load_all(bench_dir: Path) -> list[benchstore.BenchResult]:
    """Every valid result under @bench_dir; an invalid one is named and skipped."""
    if not bench_dir.is_dir() or not any(benchstore.is_result_dir(p) for p in bench_dir.iterdir()):
        raise HarnessError(f'no bench results under {bench_dir}: run make bench first', 2)
    loaded = []
    for path in benchstore.find(bench_dir):
        try:
            loaded.append(benchstore.load(path))
        except HarnessError as err:
            print(f'warning: skipping {path}: {err}', flush=True)
    if not loaded:
        raise HarnessError(f'no valid bench results under {bench_dir} (see the warnings above)', 2)
    return loaded


def positions(results: list[benchstore.BenchResult], order: dict[str, int]) -> list[tuple[str, bool]]:
    """The x positions of a group, left to right: (commit, dirty) pairs."""
    first_date: dict[tuple[str, bool], str] = {}
    for result in results:
        key = (result['commit'], result['dirty'])
        first_date[key] = min(first_date.get(key, result['date']), result['date'])

    def rank(key: tuple[str, bool]) -> tuple[int, int, str, bool]:
        commit, dirty = key
        if commit in order:
            return (0, order[commit], '', dirty)
        return (1, 0, parse_date(first_date[key]), dirty)
    return sorted(first_date, key=rank)


def parse_date(text: str) -> str:
    """A sortable form of an ISO 8601 UTC time."""
    parsed = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    return parsed.astimezone(datetime.timezone.utc).isoformat()


def file_stem(metric: str, group: Group) -> str:
    arch, config, mode, cpu, workload, smp, memory, cmdline = group
    parts = [metric, arch, config, mode, cpu, workload]
    # The machine make bench uses by default goes unnamed, to keep names short.
    if (smp, memory) != (2, 2048):
        parts.append(f'smp{smp}-{memory}M')
    if cmdline:
        parts.append(cmdline)
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', '-'.join(parts))


def plot_metric(out: Path, metric: str, group: Group, results: list[benchstore.BenchResult],
                xs: list[tuple[str, bool]]) -> trend_page.Plot | None:
    """Write <stem>.png and <stem>.svg into @out; what the page says of them, or None if
    no run has @metric."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    matplotlib.rcParams['svg.hashsalt'] = 'gptool-trend'  # the same plot gives the same SVG
    matplotlib.rcParams['svg.fonttype'] = 'none'  # text stays text: searchable, smaller

    having = [r for r in results if metric in r['metrics']]
    if not having:
        return None
    latest = max(having, key=lambda r: r['date'])['metrics'][metric]
    unit, direction = str(latest['unit']), str(latest['direction'])
    skipped = [r for r in having if r['metrics'][metric]['unit'] != unit]
    for result in skipped:
        print(f'warning: {metric} of {result.result_dir} is in {result["metrics"][metric]["unit"]}, '
              f'not {unit}: left out of the plot', flush=True)
    having = [r for r in having if r['metrics'][metric]['unit'] == unit]
    index = {key: i for i, key in enumerate(xs)}
    used = sorted({index[(r['commit'], r['dirty'])] for r in having})
    pooled: dict[int, list[float]] = defaultdict(list)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(used) + 3), 4.5))
    try:
        for result in having:
            samples = result['metrics'][metric]['samples']
            x = index[(result['commit'], result['dirty'])]
            pooled[x] += samples
            median = statistics.median(samples)
            ax.errorbar([x], [median], yerr=[[median - min(samples)], [max(samples) - median]],
                        fmt='o', color='tab:blue', ecolor='tab:gray', capsize=3, markersize=4)
        ax.plot(used, [statistics.median(pooled[x]) for x in used], '-', color='tab:blue',
                alpha=0.5, linewidth=1)
        ax.set_xticks(used)
        ax.set_xticklabels([xs[x][0][:12] + ('*' if xs[x][1] else '') for x in used],
                           rotation=45, ha='right', fontsize=8)
        # The setup goes in the page's caption: a title that long was cut at both edges.
        ax.set_title(metric, fontsize=10)
        ax.set_ylabel(f'{unit} ({direction} is better)')
        ax.set_xlabel('commit (history order; * = uncommitted changes)')
        ax.grid(True, axis='y', alpha=0.3)
        stem = file_stem(metric, group)
        # bbox_inches='tight' grows the image to what is drawn: no label is ever cut.
        fig.savefig(out / f'{stem}.png', dpi=100, metadata={'Software': None}, bbox_inches='tight')
        fig.savefig(out / f'{stem}.svg', metadata={'Date': None}, bbox_inches='tight')
    finally:
        plt.close(fig)
    return trend_page.Plot(metric, stem, unit, direction, str(latest.get('description', '')),
                           len(having), htmlpage.png_size(out / f'{stem}.png'))


def describe(group: Group) -> str:
    arch, config, mode, cpu, workload, smp, memory, cmdline = group
    extra = f', cmdline "{cmdline}"' if cmdline else ''
    return (f'{config}, {mode}, {arch}, -cpu {cpu}, smp {smp}, {memory} MiB, {workload}'
            f'{extra}')


def rerun_spread(results: list[benchstore.BenchResult], metric: str) -> tuple[int, float, float] | None:
    """How far the runs of one commit scatter: (runs, median of the run medians, spread
    in % = (max - min) / median of the run medians); None with fewer than 2 runs."""
    medians = [statistics.median(r['metrics'][metric]['samples'])
               for r in results if metric in r['metrics']]
    if len(medians) < 2:
        return None
    center = statistics.median(medians)
    spread = (max(medians) - min(medians)) / abs(center) * 100 if center else \
        (0.0 if max(medians) == min(medians) else float('inf'))
    return len(medians), center, spread


def stability_report(groups: dict[Group, list[benchstore.BenchResult]], wanted: list[str]) -> str:
    """For every commit run twice or more in a group: the spread of each metric over its
    reruns, the figure that says how far one run of that mode can be trusted."""
    lines = ['# Rerun stability', '',
             'Per metric, over the runs of one commit (same configuration and mode): the '
             'median of the run medians and their spread, (max - min) / median, in %.', '']
    for group in sorted(groups):
        # Runs of one commit with different uncommitted edits are different code.
        by_commit: dict[tuple[str, bool, str], list[benchstore.BenchResult]] = defaultdict(list)
        for result in groups[group]:
            by_commit[(result['commit'], result['dirty'],
                       str(result.get('diff_sha256', '')))].append(result)
        for (commit, dirty, diff), members in sorted(by_commit.items()):
            if len(members) < 2:
                continue
            edits = f' (edits {diff[:8]})' if dirty and diff else ''
            lines += [f'## {commit[:12]}{"*" if dirty else ""}{edits}: {describe(group)}', '',
                      '| metric | deterministic | runs | median | spread % |',
                      '| --- | --- | --- | --- | --- |']
            spreads = []
            for metric in wanted:
                found = rerun_spread(members, metric)
                if not found:
                    continue
                runs, center, spread = found
                deterministic = next(r['metrics'][metric]['deterministic'] for r in members
                                     if metric in r['metrics'])
                if not deterministic:
                    spreads.append(spread)
                lines.append(f'| {metric} | {"yes" if deterministic else "no"} | {runs} | '
                             f'{center:.6g} | {spread:.1f} |')
            if spreads:
                lines += ['', f'Timed metrics: median spread {statistics.median(spreads):.1f} %, '
                          f'largest {max(spreads):.1f} %.']
            lines.append('')
    return '\n'.join(lines) + '\n'


def group_of(result: benchstore.BenchResult) -> Group:
    return (result['arch'], result['config'], result['mode'], result['qemu']['cpu'],
            str(result.get('workload', 'full')), result['qemu']['smp'],
            result['qemu']['memory_mb'], result['cmdline'])


def index_md(setups: list[trend_page.Setup], about: str) -> str:
    lines = ['# Bench trends', '', about, '', 'index.html shows the same on one page, with the '
             'verdicts of the last compare of each setup.', '']
    for setup in setups:
        lines += [f'## {setup.title}', '', f'{trend_page.plural(setup.runs, "run")} of '
                  f'{trend_page.plural(setup.commits, "commit")}.', '']
        lines += [f'- `{p.metric}`: ![{p.metric}]({p.stem}.png) [SVG]({p.stem}.svg)'
                  for p in setup.plots]
        lines.append('')
    return '\n'.join(lines)


def run(req: TrendRequest) -> int:
    if importlib.util.find_spec('matplotlib') is None:
        raise HarnessError('matplotlib is missing: run make deps (Debian package '
                           'python3-matplotlib)', 2)
    bench_dir = req.results / 'bench'
    results = load_all(bench_dir)
    names = sorted({name for r in results for name in r['metrics']})
    wanted = [n for n in names
              if not req.metrics or any(fnmatch.fnmatchcase(n, g) for g in req.metrics)]
    if not wanted:
        raise HarnessError(f'no metric matches {" ".join(req.metrics)}: the results hold '
                           f'{", ".join(names)}', 2)
    groups: dict[Group, list[benchstore.BenchResult]] = defaultdict(list)
    for result in results:
        groups[group_of(result)].append(result)
    order = history(req.repo)
    reports = trend_page.compare_reports(req.results.absolute() / 'compare')
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    about = (f'From {len(results)} results under {bench_dir}; each point is one run (median, '
             'bar from min to max sample), the line joins the medians of all samples of a '
             'commit; * marks runs with uncommitted changes.')

    def fill(staging: Path) -> None:
        setups = []
        for group in sorted(groups):
            members = groups[group]
            xs = positions(members, order)
            plots = [plot for metric in wanted
                     if (plot := plot_metric(staging, metric, group, members, xs))]
            setups.append(trend_page.Setup(describe(group), len(members), len(xs), plots,
                                           trend_page.last_compare(reports, members[0],
                                                                   staging.absolute())))
        setups.sort(key=lambda setup: setup.verdicts is None)  # those compared first
        (staging / 'index.html').write_text(trend_page.render(setups, about))
        (staging / 'index.md').write_text(index_md(setups, about))
        (staging / 'stability.md').write_text(stability_report(groups, wanted))
    out = publish_dir(req.results / 'trend', stamp, fill)
    print(f'trend: {out}')
    return 0

"""trend's index.html: every plot of one `make trend` on one page, by setup, then by
workload and protection, the headline metrics first; each with its full name as a
heading, its setup in the caption and, beside it, the verdict of the last compare of
that setup (the table row of its report), which compare_reports and last_compare find
under results/compare."""
import json
import os
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from . import benchstore, compare_report, metricnames
from .htmlpage import VERDICT_ORDER, badge, esc, name, page, tint


@dataclass
class Plot:
    metric: str
    stem: str  # <stem>.png and <stem>.svg, next to the page
    unit: str
    direction: str
    description: str
    runs: int
    size: tuple[int, int]  # of the PNG


@dataclass
class Verdicts:
    """The compare whose verdicts a setup's plots show."""
    name: str  # its directory
    link: str  # its page, relative to index.html
    report: dict[str, Any]  # its report.json


@dataclass
class Setup:
    title: str
    runs: int
    commits: int
    plots: list[Plot]
    verdicts: Verdicts | None

    def __post_init__(self) -> None:
        # By section, the headline metrics first in each: the order both indexes list them.
        self.plots.sort(key=lambda plot: metricnames.order_key(plot.metric))


def report_problem(report: Any) -> str:
    """Why a report.json cannot give the page its verdicts; '' if it can."""
    try:
        if report['kind'] != 'compare' or not isinstance(report['date'], str):
            return 'not a compare report'
        float(report['rule']['alpha'])
        if not all(isinstance(side['spec'], str) and isinstance(side['commits'], list)
                   for side in (report['a'], report['b'])):
            return 'its sides lack a spec or commits'
        if any(benchstore.field_value(report['b'], f) is None
               for f in benchstore.SETUP if f != 'workload'):
            return 'its side B lacks its setup'
        # Reports written before compare said why a metric is "~" lack some fields.
        missing = {f for row in report['metrics'].values()
                   for f in compare_report.ROW_FIELDS if f not in row}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return f'not a compare report of this harness ({type(err).__name__}: {err})'
    return f'written by an older harness (its rows lack {", ".join(sorted(missing))})' \
        if missing else ''


def compare_reports(compare_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The usable compare reports under @compare_dir with their directories, newest first;
    one that is not usable is named and passed over."""
    found = []
    paths = sorted(compare_dir.glob('[!.]*/report.json')) if compare_dir.is_dir() else []
    for path in paths:
        try:
            report = json.loads(path.read_text())
            problem = report_problem(report)
        except (OSError, ValueError) as err:
            problem = str(err)
        if problem:
            print(f'warning: trend shows no verdicts of {path.parent}: {problem}', flush=True)
            continue
        found.append((path.parent, report))
    return sorted(found, key=lambda item: (item[1]['date'], item[0].name), reverse=True)


def last_compare(reports: list[tuple[Path, dict[str, Any]]], result: dict[str, Any],
                 page_dir: Path) -> Verdicts | None:
    """The verdicts of the newest compare whose B side has the setup of @result; None if
    none has. A report of before compare recorded the workload matches any."""
    for path, report in reports:
        side = report['b']
        if all(benchstore.field_value(side, f) == benchstore.field_value(result, f)
               for f in benchstore.SETUP if f != 'workload' or 'workload' in side):
            html_file = path / 'report.html'
            link = os.path.relpath(html_file if html_file.is_file() else path / 'report.md',
                                   page_dir)
            return Verdicts(path.name, link, report)
    return None


def plural(count: int, noun: str) -> str:
    return f'{count} {noun}{"s" if count != 1 else ""}'


def section_title(workload: str, protection: str) -> str:
    return f'{workload} / {protection}' if protection else workload


def verdict_box(plot: Plot, verdicts: Verdicts) -> str:
    """The row of compare's table for this metric, as a small table of its own."""
    row = verdicts.report['metrics'].get(plot.metric)
    source = f'<a href="{esc(verdicts.link)}#{esc(plot.metric)}">{esc(verdicts.name)}</a>'
    if row is None:
        return f'<aside class="verdict">not in the last compare ({source})</aside>'
    header = compare_report.header(verdicts.report['rule']['alpha'])
    cells = compare_report.cells(plot.metric, row)
    lines = [f'<tr><th>{esc(h)}</th><td>{badge(c) if h == "verdict" else esc(c)}</td></tr>'
             for h, c in zip(header[2:], cells[2:])]
    return (f'<aside class="verdict {tint(row["verdict"])}">'
            f'<table>{"".join(lines)}</table><div>{esc(row["reason"])}</div>'
            f'<div class="note">compare {source}</div></aside>')


def figure(plot: Plot, setup: Setup) -> str:
    width, height = plot.size
    tag = ' <span class="headline">headline</span>' if metricnames.is_headline(plot.metric) else ''
    description = f'{esc(plot.description)}. ' if plot.description else ''
    caption = (f'{description}{esc(plot.unit)}, {esc(plot.direction)} is better; '
               f'{plural(plot.runs, "run")}. {esc(setup.title)}. <a href="{esc(plot.stem)}.svg">SVG</a>')
    aside = verdict_box(plot, setup.verdicts) if setup.verdicts else ''
    return (f'<figure class="metric" id="{esc(plot.stem)}"><div class="plot">'
            f'<h4>{name(plot.metric)}{tag}</h4>'
            f'<img src="{esc(plot.stem)}.png" width="{width}" height="{height}" '
            f'alt="{esc(plot.metric)} over the commits">'
            f'<figcaption>{caption}</figcaption></div>{aside}</figure>')


def verdict_summary(setup: Setup) -> str:
    if not setup.verdicts:
        return ('<p class="note">No compare of this setup under results/compare: no verdicts '
                'beside the plots.</p>')
    report = setup.verdicts.report
    plotted = {plot.metric: plot.stem for plot in setup.plots}
    parts = []
    for verdict in VERDICT_ORDER[:3]:
        names = [metric for metric, row in report['metrics'].items()
                 if row['verdict'] == verdict and metric in plotted]
        if names:
            links = ', '.join(f'<a href="#{esc(plotted[m])}">{name(m)}</a>' for m in names)
            parts.append(f'{badge(verdict)} {links}')
    sides = '; '.join(f'{label} = {esc(report[key]["spec"])} '
                      f'({esc(", ".join(c[:12] for c in report[key]["commits"]))})'
                      for label, key in (('A', 'a'), ('B', 'b')))
    return (f'<p>Verdicts beside the plots: the last compare of this setup, '
            f'<a href="{esc(setup.verdicts.link)}">{esc(setup.verdicts.name)}</a> '
            f'({esc(report["date"])}; {sides}).</p>'
            f'<p>{"<br>".join(parts) or "No change called in it."}</p>')


def render(setups: list[Setup], about: str) -> str:
    """The whole page; @about: where the results came from and how to read a plot."""
    body = ['<h1>Bench trends</h1>', f'<p>{esc(about)}</p>', '<nav><ul>']
    sections: list[list[tuple[str, list[Plot]]]] = []
    for number, setup in enumerate(setups):
        found = [(section_title(*key), list(plots)) for key, plots in
                 groupby(setup.plots, key=lambda p: metricnames.section(p.metric))]
        sections.append(found)
        body.append(f'<li><a href="#setup-{number}">{esc(setup.title)}</a>: '
                    + ', '.join(f'<a href="#setup-{number}-{index}">{esc(title)}</a>'
                                for index, (title, _) in enumerate(found)) + '</li>')
    body.append('</ul></nav>')
    for number, (setup, found) in enumerate(zip(setups, sections)):
        body += [f'<h2 id="setup-{number}">{esc(setup.title)}</h2>',
                 f'<p>{plural(setup.runs, "run")} of {plural(setup.commits, "commit")}.</p>',
                 verdict_summary(setup)]
        for index, (title, plots) in enumerate(found):
            body.append(f'<h3 id="setup-{number}-{index}">{esc(title)}</h3>')
            body += [figure(plot, setup) for plot in plots]
    return page('Bench trends', body)

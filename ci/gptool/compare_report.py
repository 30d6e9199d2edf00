"""compare's report as a person reads it: the cells of its table (the terminal's,
report.md's, report.html's, and beside trend's plots) and report.html, the table as one
static page, regressions first, then inconclusive changes, improvements and "~", each
row with the reason for its verdict."""
from typing import Any

from .htmlpage import VERDICT_ORDER, VERDICT_TITLES, badge, esc, name, page, tint

# The fields of a metric's row in report.json that its cells and the pages show.
ROW_FIELDS = ('unit', 'center_a', 'center_b', 'spread_a_pct', 'spread_b_pct', 'delta_pct',
              'ci_low_pct', 'ci_high_pct', 'p_value', 'verdict', 'why', 'basis', 'reason')


def number(value: float | None) -> str:
    """Integers whole; others to 4 significant digits, no exponent from 0.01 up."""
    if value is None:
        return '-'
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f'{value:.0f}'
    return f'{value:.4g}' if abs(value) >= 0.01 else f'{value:.3g}'


def pct(value: float | None) -> str:
    return '-' if value is None else f'{value:+.1f}%'


def cells(name: str, row: dict[str, Any]) -> list[str]:
    def center(value: float, spread: float | None) -> str:
        return number(value) + (f' ±{spread:.0f}%' if spread is not None else '')
    ci = '-' if row['ci_low_pct'] is None else \
        f'[{pct(row["ci_low_pct"])}, {pct(row["ci_high_pct"])}]'
    p = '-' if row['p_value'] is None else f'{row["p_value"]:.3g}'
    return [name, row['unit'], center(row['center_a'], row['spread_a_pct']),
            center(row['center_b'], row['spread_b_pct']), pct(row['delta_pct']), ci, p,
            row['verdict'], row['why'] or row['basis']]


def header(alpha: float) -> list[str]:
    return ['metric', 'unit', 'A (median ±spread)', 'B', 'delta', f'{100 * (1 - alpha):g}% CI',
            'p', 'verdict', 'why (or what it rests on)']


def counts_line(rows: dict[str, dict[str, Any]]) -> str:
    counts = [(verdict, sum(row['verdict'] == verdict for row in rows.values()))
              for verdict in VERDICT_ORDER]
    return ', '.join(f'{badge(verdict)} {count}' for verdict, count in counts if count) or \
        'no metric in both sides'


def table_html(rows: dict[str, dict[str, Any]], alpha: float) -> list[str]:
    """compare's table (as report.md has it) and the reasons, grouped by verdict."""
    columns = header(alpha)
    verdict_column = columns.index('verdict')
    out = ['<table>', '<thead><tr>' + ''.join(f'<th>{esc(c)}</th>' for c in columns)
           + '<th>reason</th></tr></thead>']
    for verdict in VERDICT_ORDER:
        group = [cells(metric, row) for metric, row in rows.items() if row['verdict'] == verdict]
        if not group:
            continue
        out.append(f'<tbody class="{tint(verdict)}"><tr><th class="group" '
                   f'colspan="{len(columns) + 1}">{esc(VERDICT_TITLES[verdict])} '
                   f'({len(group)})</th></tr>')
        for metric, *rest in group:
            tds = [f'<td id="{esc(metric)}">{name(metric)}</td>']
            tds += [f'<td>{badge(cell) if index == verdict_column else esc(cell)}</td>'
                    for index, cell in enumerate(rest, 1)]
            tds.append(f'<td class="reason">{esc(rows[metric]["reason"])}</td>')
            out.append('<tr>' + ''.join(tds) + '</tr>')
        out.append('</tbody>')
    return out + ['</table>']


def render(report: dict[str, Any], about: list[str], tail: list[str]) -> str:
    """The page of one compare: @report as in report.json, @about (the sides, the setup,
    the rule) and @tail (metrics of one side, notes) as in report.md."""
    rows = report['metrics']
    title = f'compare: {report["a"]["spec"]} vs {report["b"]["spec"]}'
    body = [f'<h1>{esc(title)}</h1>', '<ul>', *[f'<li>{esc(line)}</li>' for line in about],
            '</ul>', f'<p>{counts_line(rows)}</p>']
    body += table_html(rows, report['rule']['alpha']) if rows else []
    if tail:
        body += ['<ul class="note">', *[f'<li>{esc(line)}</li>' for line in tail], '</ul>']
    body.append('<p class="note">The same in report.md and, with every sample, report.json; '
                'the results compared are in A/ and B/.</p>')
    return page(title, body)

"""Static HTML result pages (trend's index.html, compare's report.html): one file, its
style inline, no script and nothing fetched from the network; every text escaped.

Long names wrap rather than overflow: metric names may break after their dots, and
headings, paths and reasons anywhere, so that at a desktop width nothing is cut off
or scrolls sideways.
"""
import html
import struct
from pathlib import Path

# The order a person reads verdicts in: what needs acting on first.
VERDICT_ORDER = ('regression', 'inconclusive', 'improvement', '~')
VERDICT_TITLES = {'regression': 'Regressions', 'inconclusive': 'Inconclusive',
                  'improvement': 'Improvements', '~': 'No change called (~)'}

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 15px; line-height: 1.4;
       color: #1a1a1a; max-width: 1500px; margin: 1em auto; padding: 0 1em; }
h1, h2, h3, h4, p, li, figcaption, aside { overflow-wrap: anywhere; }
h2 { border-bottom: 2px solid #444; margin-top: 2em; }
h3 { border-bottom: 1px solid #bbb; margin-top: 1.6em; }
h4 { margin: 0 0 .3em; font-weight: normal; }
code, .name { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0 1em; }
th, td { border: 1px solid #c8c8c8; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.reason { min-width: 12em; }
tbody th.group { background: #ddd; font-size: 14px; }
.v { display: inline-block; padding: 0 .45em; border-radius: 3px; font-weight: bold;
     white-space: nowrap; }
.v-regression { background: #f6c4c4; color: #7a0000; }
.v-inconclusive { background: #f8e2a8; color: #6b4b00; }
.v-improvement { background: #c8ecc8; color: #0b5a0b; }
.v-same { background: #e6e6e6; color: #333; }
.headline { font-size: 11px; padding: 0 .4em; border: 1px solid #3a62a8; border-radius: 3px;
            color: #3a62a8; vertical-align: middle; }
figure.metric { display: flex; flex-wrap: wrap; gap: 1em; margin: 0 0 1.5em;
                padding-top: .6em; border-top: 1px solid #e0e0e0; }
.plot { flex: 1 1 560px; min-width: 0; }
.plot img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #444; }
aside.verdict { flex: 0 1 320px; min-width: 220px; font-size: 13px; padding: .5em;
                border-left: 4px solid #ccc; background: #fafafa; align-self: flex-start; }
.t-regression td, aside.t-regression { background: #fdeeee; }
.t-inconclusive td, aside.t-inconclusive { background: #fdf6e0; }
.t-improvement td, aside.t-improvement { background: #edf8ed; }
aside.t-regression { border-left-color: #c00; }
aside.t-inconclusive { border-left-color: #c90; }
aside.t-improvement { border-left-color: #080; }
.note { color: #555; font-size: 13px; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def name(metric: str) -> str:
    """A metric name, escaped, that may wrap after each dot."""
    return f'<span class="name">{".<wbr>".join(esc(part) for part in metric.split("."))}</span>'


def tint(verdict: str) -> str:
    """The class that tints a row or box of a change (none for "~")."""
    return '' if verdict == '~' else f't-{esc(verdict)}'


def badge(verdict: str) -> str:
    kind = 'same' if verdict == '~' else esc(verdict)
    return f'<span class="v v-{kind}">{esc(verdict)}</span>'


def page(title: str, body: list[str]) -> str:
    """A whole document around @body (lines of HTML, already escaped)."""
    return '\n'.join([
        '<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<title>{esc(title)}</title>', f'<style>{STYLE}</style>', '</head>', '<body>',
        *body, '</body>', '</html>', ''])


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    with open(path, 'rb') as png:
        header = png.read(24)
    if header[:8] != b'\x89PNG\r\n\x1a\n' or header[12:16] != b'IHDR':
        raise ValueError(f'{path} is not a PNG')
    width, height = struct.unpack('>II', header[16:24])
    return width, height

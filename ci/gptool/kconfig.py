"""Say which kunitconfig options did not land in .config, and why when we can tell.

kunit.py only says "Not all Kconfig options selected in kunitconfig were in the
generated .config"; users then hunt for the blocking dependency by hand.
"""
import re
from dataclasses import dataclass
from pathlib import Path

_OPTION = re.compile(r'^(CONFIG_\w+)=(.*)$')
_UNSET = re.compile(r'^# (CONFIG_\w+) is not set$')


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value ('n' for '# CONFIG_X is not set')."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if match := _OPTION.match(line):
            values[match.group(1)] = match.group(2)
        elif match := _UNSET.match(line):
            values[match.group(1)] = 'n'
    return values


@dataclass(frozen=True)
class Mismatch:
    option: str
    wanted: str
    got: str
    reason: str


# The arch/ directories whose Kconfig files a kernel ARCH reads.
SRCARCH_DIRS = {'um': ('um', 'x86'), 'x86_64': ('x86',), 'i386': ('x86',)}


def kconfig_blocks(tree: Path, arch: str | None = None) -> dict[str, list[str]]:
    """Every 'config SYMBOL' entry of the tree's Kconfig files (of @arch's arch/ dirs
    only, when given): its 'depends on' lines, and the 'if' blocks around it."""
    blocks: dict[str, list[str]] = {}
    own_arch = SRCARCH_DIRS.get(arch or '', None)
    for kconfig in tree.rglob('Kconfig*'):
        if not kconfig.is_file():
            continue
        parts = kconfig.relative_to(tree).parts
        if own_arch and len(parts) > 2 and parts[0] == 'arch' and parts[1] not in own_arch:
            continue
        current: list[str] | None = None
        ifs: list[str] = []
        for line in kconfig.read_text(errors='replace').splitlines():
            if match := re.match(r'^\s*(?:menu)?config\s+(\w+)\s*$', line):
                current = blocks.setdefault(match.group(1), [])
                current.extend(ifs)
            elif match := re.match(r'^if\s+(.+)$', line):
                ifs.append(match.group(1).strip())
                current = None
            elif re.match(r'^endif\b', line):
                if ifs:
                    ifs.pop()
                current = None
            elif re.match(r'^\s*(?:menu|endmenu|choice|endchoice|source|comment)\b', line):
                current = None
            elif current is not None and (dep := re.match(r'^\s*depends on\s+(.*)$', line)):
                current.append(dep.group(1).strip())
    return blocks


def explain(option: str, config: dict[str, str], blocks: dict[str, list[str]]) -> str:
    symbol = option.removeprefix('CONFIG_')
    if symbol not in blocks:
        return 'no such Kconfig symbol in this tree (misspelt, or removed in this base)'
    unmet = []
    for expr in blocks[symbol]:
        symbols = sorted(set(re.findall(r'\b([A-Z][A-Z0-9_]+)\b', expr)))
        values = ', '.join(f'{s}={config.get("CONFIG_" + s, "n")}' for s in symbols)
        unmet.append(f'depends on {expr} [{values}]')
    if not unmet:
        return 'not blocked by a direct dependency: check "select" or "choice" entries'
    return '; '.join(unmet)


def mismatches(wanted: dict[str, str], dotconfig: dict[str, str], tree: Path,
               arch: str | None = None) -> list[Mismatch]:
    wrong = [(opt, val) for opt, val in wanted.items() if dotconfig.get(opt, 'n') != val]
    if not wrong:
        return []
    blocks = kconfig_blocks(tree, arch)
    return [Mismatch(opt, val, dotconfig.get(opt, 'n'), explain(opt, dotconfig, blocks))
            for opt, val in wrong]

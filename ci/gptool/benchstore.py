"""The bench results store: one directory per bench run, checked against one schema.

A result is results/bench/<UTC time>-<commit12>-<arch>-<config>-<mode>/ holding
result.json (the fields below), console.log and config (the kernel .config). It is
published whole by fsutil.publish_dir and never overwritten, so a reader sees either
no result or a complete one. Every reader goes through load(), which validates, so a
bad or hand-edited result.json is reported by file and field instead of being used.

The schema (version 1; unknown extra fields, top level or in a metric, are allowed so
that older readers accept newer results):

    schema         1
    kind           "bench"
    commit         40 lowercase hex digits, or "uncommitted"
    dirty          bool: the checkout differed from the commit (untracked files too)
    base           {"version": str, "key": str, ...}: the kernel base
    config         str: the configs/<config>.config fragment
    config_sha256  64 hex digits: sha256 of the whole kernel .config
    arch           str
    qemu           {"cpu": str, "smp": int >= 1, "memory_mb": int >= 1, "command": [str]}
    mode           "tcg" or "icount"
    tools          {"gcc": str, "qemu": str, "ccache": str, ...}: versions
    date           ISO 8601 UTC time the run started, e.g. 2025-01-31T12:00:00Z
    duration_s     number >= 0
    cmdline        str: extra kernel command line ("" for none)
    metrics        non-empty {name: metric}; name matches [a-z0-9_.]+

    metric: unit str (non-empty), direction "lower" or "higher" (which is better),
            deterministic bool, samples non-empty [finite numbers],
            optional description str, optional min_effect_pct number > 0.
"""
import datetime
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import provenance
from .errors import HarnessError
from .fsutil import publish_dir

SCHEMA_VERSION = 1
MODES = ('tcg', 'icount')
DIRECTIONS = ('lower', 'higher')
RESULT_FILE = 'result.json'
METRIC_NAME = re.compile(r'[a-z0-9_.]+')
COMMIT = re.compile(r'[0-9a-f]{40}')
SHA256 = re.compile(r'[0-9a-fA-F]{64}')
REQUIRED_TOOLS = ('gcc', 'qemu', 'ccache')
# The setup: what must match for two results to be comparable (compare's sides, trend's
# lines), as dotted field names; workload is an optional field the bench verb adds.
SETUP = ('arch', 'config', 'mode', 'qemu.cpu', 'qemu.smp', 'qemu.memory_mb', 'cmdline',
         'workload')


def field_value(result: dict[str, Any], name: str) -> Any:
    """The field @name (dotted: qemu.cpu) of @result; None if it has none."""
    value: Any = result
    for part in name.split('.'):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class BenchResult(dict[str, Any]):
    """A validated result.json as a plain dict, plus the directory it was loaded from
    (result_dir is an attribute, not a key: it is not part of the stored JSON)."""

    def __init__(self, data: dict[str, Any], result_dir: Path) -> None:
        super().__init__(data)
        self.result_dir = result_dir


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + '...'


def _bad(where: str, field: str, value: Any, valid: str) -> HarnessError:
    return HarnessError(f'{where}: field {field} holds {_show(value)}; valid is {valid}', 2)


def _missing(where: str, field: str, valid: str) -> HarnessError:
    return HarnessError(f'{where}: field {field} is missing; valid is {valid}', 2)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_utc_iso8601(value: Any) -> bool:
    if not isinstance(value, str) or 'T' not in value:
        return False
    try:
        parsed = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return False
    return parsed.utcoffset() == datetime.timedelta(0)


# field -> (check, what is valid); nested dicts are checked below.
Check = tuple[Callable[[Any], bool], str]
_TOP: dict[str, Check] = {
    'schema': (lambda v: _is_int(v) and v == SCHEMA_VERSION, f'the integer {SCHEMA_VERSION}'),
    'kind': (lambda v: v == 'bench', '"bench"'),
    'commit': (lambda v: v == 'uncommitted' or isinstance(v, str) and COMMIT.fullmatch(v) is not None,
               '40 lowercase hex digits or "uncommitted"'),
    'dirty': (lambda v: isinstance(v, bool), 'true or false'),
    'base': (lambda v: isinstance(v, dict), 'an object with string fields version and key'),
    'config': (lambda v: isinstance(v, str) and v != '',
               'a non-empty string (a configs/ fragment name)'),
    'config_sha256': (lambda v: isinstance(v, str) and SHA256.fullmatch(v) is not None,
                      '64 hex digits (sha256 of the .config)'),
    'arch': (lambda v: isinstance(v, str) and v != '', 'a non-empty string'),
    'qemu': (lambda v: isinstance(v, dict), 'an object with cpu, smp, memory_mb and command'),
    'mode': (lambda v: v in MODES, ' or '.join(f'"{m}"' for m in MODES)),
    'tools': (lambda v: isinstance(v, dict),
              'an object of version strings with gcc, qemu and ccache'),
    'date': (_is_utc_iso8601, 'an ISO 8601 UTC time such as "2025-01-31T12:00:00Z"'),
    'duration_s': (lambda v: _is_number(v) and v >= 0, 'a number >= 0'),
    'cmdline': (lambda v: isinstance(v, str), 'a string (may be "")'),
    'metrics': (lambda v: isinstance(v, dict) and bool(v), 'a non-empty object of metrics'),
}

_QEMU: dict[str, Check] = {
    'cpu': (lambda v: isinstance(v, str) and v != '', 'a non-empty string'),
    'smp': (lambda v: _is_int(v) and v >= 1, 'an integer >= 1'),
    'memory_mb': (lambda v: _is_int(v) and v >= 1, 'an integer >= 1 (MiB)'),
    'command': (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
                'a list of strings'),
}

_METRIC: dict[str, Check] = {
    'unit': (lambda v: isinstance(v, str) and v != '', 'a non-empty string'),
    'direction': (lambda v: v in DIRECTIONS, '"lower" or "higher" (which is better)'),
    'deterministic': (lambda v: isinstance(v, bool), 'true or false'),
    'samples': (lambda v: isinstance(v, list) and bool(v) and all(_is_number(s) for s in v),
                'a non-empty list of finite numbers'),
}

_METRIC_OPTIONAL: dict[str, Check] = {
    'description': (lambda v: isinstance(v, str), 'a string'),
    'min_effect_pct': (lambda v: _is_number(v) and v > 0, 'a number > 0 (percent)'),
}


def _check_fields(where: str, prefix: str, obj: dict[str, Any],
                  required: dict[str, Check], optional: dict[str, Check] | None = None) -> None:
    for name, (check, valid) in required.items():
        if name not in obj:
            raise _missing(where, prefix + name, valid)
        if not check(obj[name]):
            raise _bad(where, prefix + name, obj[name], valid)
    for name, (check, valid) in (optional or {}).items():
        if name in obj and not check(obj[name]):
            raise _bad(where, prefix + name, obj[name], valid)


def validate(result: dict[str, Any], where: str = 'bench result') -> None:
    """Raise HarnessError (status 2) naming the first bad field, what it holds and what
    is valid; @where names the result (its file) in the message."""
    if not isinstance(result, dict):
        raise HarnessError(f'{where}: holds {_show(result)}; valid is a JSON object', 2)
    _check_fields(where, '', result, _TOP)
    for name in ('version', 'key'):
        if not isinstance(result['base'].get(name), str):
            raise _bad(where, f'base.{name}', result['base'].get(name), 'a string')
    _check_fields(where, 'qemu.', result['qemu'], _QEMU)
    for name in REQUIRED_TOOLS:
        if name not in result['tools']:
            raise _missing(where, f'tools.{name}', 'a version string')
    for name, version in result['tools'].items():
        if not isinstance(version, str):
            raise _bad(where, f'tools.{name}', version, 'a version string')
    for name, metric in result['metrics'].items():
        if not METRIC_NAME.fullmatch(name):
            raise HarnessError(f'{where}: metric name {_show(name)} is not valid; valid names '
                               'match [a-z0-9_.]+', 2)
        if not isinstance(metric, dict):
            raise _bad(where, f'metrics.{name}', metric,
                       'an object with unit, direction, deterministic and samples')
        _check_fields(where, f'metrics.{name}.', metric, _METRIC, _METRIC_OPTIONAL)


def save(results_root: Path, result: dict[str, Any], files: dict[str, bytes]) -> Path:
    """Validate @result and publish it with @files (e.g. console.log, config) as a new
    directory under results_root/bench; returns the directory. Never overwrites."""
    validate(result)
    for name in files:
        if name == RESULT_FILE or not name or '/' in name or name.startswith('.'):
            raise HarnessError(f'bench result file name {name!r} is not valid: want a plain '
                               f'file name other than {RESULT_FILE}', 2)

    def fill(staging: Path) -> None:
        (staging / RESULT_FILE).write_text(json.dumps(result, indent=2, sort_keys=True) + '\n')
        for name, data in files.items():
            (staging / name).write_bytes(data)
    return publish_dir(results_root / 'bench', provenance.result_name(
        result['arch'], result['config'], result, result['mode']), fill)


def load(path: Path) -> BenchResult:
    """The validated result.json of a result directory (or of that file itself): a dict,
    whose result_dir attribute is its directory. Errors name the file."""
    file = path if path.name == RESULT_FILE and not path.is_dir() else path / RESULT_FILE
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise HarnessError(f'{file}: no such file: {path} is not a bench result directory', 2)
    except OSError as err:
        raise HarnessError(f'{file}: cannot read it ({err.strerror})', 2)
    try:
        data = json.loads(text)
    except ValueError as err:
        raise HarnessError(f'{file}: not valid JSON ({err})', 2)
    validate(data, str(file))
    return BenchResult(data, file.parent)


def is_result_dir(path: Path) -> bool:
    return (path / RESULT_FILE).is_file()


def find(spec: Path) -> list[Path]:
    """The result directories @spec names: itself if it is one (or its result.json);
    else the result directories in it, sorted by name; a results root (holding bench/)
    stands for its bench/ directory."""
    if spec.is_file() and spec.name == RESULT_FILE:
        return [spec.parent]
    if not spec.is_dir():
        raise HarnessError(f'{spec} is not a directory of bench results', 2)
    if is_result_dir(spec):
        return [spec]
    found = sorted(p for p in spec.iterdir() if not p.name.startswith('.') and is_result_dir(p))
    if not found and (spec / 'bench').is_dir():
        return find(spec / 'bench')
    if not found:
        raise HarnessError(f'no bench results in {spec}: want a directory holding '
                           f'{RESULT_FILE}, or one holding such directories', 2)
    return found

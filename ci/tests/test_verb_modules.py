"""The harness's shape: one module per verb over shared layers, no verb importing another,
not even through a layer."""
import ast
from pathlib import Path

GPTOOL = Path(__file__).resolve().parents[1] / 'gptool'
VERBS = ('kunit_run', 'selftest_run', 'mm_selftests', 'faults', 'bench', 'compare', 'trend',
         'bisect')


def imported_siblings(module: str) -> set[str]:
    tree = ast.parse((GPTOOL / f'{module}.py').read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split('.')[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


def reached(module: str) -> set[str]:
    """The sibling modules @module imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in imported_siblings(todo.pop()) - seen:
            if (GPTOOL / f'{name}.py').is_file():
                seen.add(name)
                todo.append(name)
    return seen


def test_no_verb_imports_another() -> None:
    for verb in VERBS:
        assert (GPTOOL / f'{verb}.py').is_file(), verb
        # Not through a shared layer either (trend's page shows compare's rows: the
        # layer compare_report formats them for both).
        assert not reached(verb) & (set(VERBS) - {verb}), (verb, reached(verb))

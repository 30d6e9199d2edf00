"""`make help` names every target and every variable the Makefile reads."""
import re
import subprocess

from conftest import REPO

# Set inside the Makefile or by the environment, not by a user.
INTERNAL = {'GPTOOL', 'PYTHON', 'CURDIR', 'HOME', 'XDG_CACHE_HOME'}


def test_help_lists_every_target_and_variable() -> None:
    makefile = (REPO / 'Makefile').read_text()
    phony = re.search(r'^\.PHONY:(.*)$', makefile, re.M)
    assert phony
    targets = set(phony.group(1).split()) - {'help'}
    variables = set(re.findall(r'\$\(([A-Z_]+)\)', makefile)) - INTERNAL
    shown = subprocess.run(['make', '-s', '-C', str(REPO), 'help'], capture_output=True, text=True,
                           check=True).stdout
    words = set(re.findall(r'[A-Za-z_-]+', shown))
    assert {t for t in targets if t not in words} == set()
    assert {v for v in variables if v not in words} == set()

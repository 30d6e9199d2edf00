"""What a bench metric's name says: its workload, its protection, and whether it is a
headline figure (what `make bench` prints at the end and the result pages show first).

Names are gp_bench's: <workload>[.<protection>].<...>, e.g. frag.ro.n1024.grouped.splits,
fastpath.cpus2.ratio, protect.pkey.block_ns_per_page, pgtable.fork_exit_us.
"""
import re

# The order the result pages list them in; others follow, by name.
WORKLOADS = ('fastpath', 'frag', 'fallback', 'protect', 'pgtable', 'age')
PROTECTIONS = ('ro', 'np', 'pkey')
# Grouped cache against the baseline: the direct-map splits (level2_splits before
# gp_bench counted each step's own), the 4K left after freeing, the flushes and IPIs.
HEADLINE = re.compile(r'^frag\.(\w+)\.n(\d+)\.(grouped|baseline)\.(splits|level2_splits'
                      r'|directmap4k_after_kb|tlb_flushes_per_1000_pages'
                      r'|call_ipis_per_1000_pages)$')
# The fast path's cost: grouped / alloc_page() within one boot.
FASTPATH_RATIO = re.compile(r'^fastpath\.\w+\.ratio$')


def is_headline(name: str) -> bool:
    return bool(HEADLINE.match(name) or FASTPATH_RATIO.match(name))


def section(name: str) -> tuple[str, str]:
    """(workload, protection) of a metric; protection '' when it has none."""
    parts = name.split('.')
    protection = parts[1] if len(parts) > 2 and parts[1] in PROTECTIONS else ''
    return parts[0], protection


def _rank(value: str, known: tuple[str, ...]) -> tuple[int, str]:
    return (known.index(value), '') if value in known else (len(known), value)


def section_key(workload: str, protection: str) -> tuple[tuple[int, str], tuple[int, str]]:
    """Sorts sections: the workloads and protections in the order above."""
    return _rank(workload, WORKLOADS), _rank(protection, ('',) + PROTECTIONS)


def order_key(name: str) -> tuple[tuple[tuple[int, str], tuple[int, str]], bool, str]:
    """Sorts metrics: by section, the headline ones first in each, then by name."""
    return section_key(*section(name)), not is_headline(name), name

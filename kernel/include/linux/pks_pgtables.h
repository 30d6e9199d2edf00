/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page-table pages from a grouped page cache whose direct-map entries carry a
 * protection key. Hooked into pagetable_alloc()/pagetable_free(); with the
 * feature off or unsupported by the CPU, page tables come from the page
 * allocator as usual.
 */
#ifndef _LINUX_PKS_PGTABLES_H
#define _LINUX_PKS_PGTABLES_H

#include <linux/gfp_types.h>
#include <linux/jump_label.h>
#include <linux/types.h>

struct grouped_pages_cache;
struct mm_struct;
struct page;

/* Page-table levels, indexing the counts below. */
enum pks_pgtable_level {
	PKS_PGTABLE_PTE,
	PKS_PGTABLE_PMD,
	PKS_PGTABLE_PUD,
	PKS_PGTABLE_P4D,
	PKS_PGTABLE_PGD,
	PKS_PGTABLE_LEVELS,
};

/**
 * struct pks_pgtable_walk - what a walk of live page tables found
 * @tables: page-table pages found per level
 * @untagged: of those, pages whose direct-map entry lacks the page-table key
 *	and that nothing will give it
 * @pending: pages without the key yet, from the page allocator, that a work
 *	item tags soon (the cache could not serve them)
 */
struct pks_pgtable_walk {
	unsigned long tables[PKS_PGTABLE_LEVELS];
	unsigned long untagged[PKS_PGTABLE_LEVELS];
	unsigned long pending[PKS_PGTABLE_LEVELS];
};

/**
 * struct pks_pgtable_counts - page-table pages handed out and returned per level
 * @allocated: tables made at each level since PKS page tables were enabled
 * @freed: tables freed at each level since then; tables made at boot, before
 *	the feature was enabled, count here too when they are freed
 */
struct pks_pgtable_counts {
	unsigned long allocated[PKS_PGTABLE_LEVELS];
	unsigned long freed[PKS_PGTABLE_LEVELS];
};

/**
 * struct pks_pgtable_fault - a PK fault on a page table
 * @address: the address written
 * @error_code: the page fault's hardware error code
 * @pkrs: PKRS of the faulting context
 */
struct pks_pgtable_fault {
	unsigned long address;
	unsigned long error_code;
	u32 pkrs;
};

/**
 * struct pks_pgtable_faults - PK faults on page tables since boot
 * @unexpected: writes outside a write window (reported; oops or warn)
 * @fixed_up: nofault accesses denied and fixed up
 * @expected: the KUnit suite's deliberate stray writes
 * @unprotected_bringups: CPUs that came up with CR4.PKS on while PKRS did not
 *	yet write-protect page tables
 * @last: the last fault of any kind
 */
struct pks_pgtable_faults {
	unsigned long unexpected;
	unsigned long fixed_up;
	unsigned long expected;
	unsigned long unprotected_bringups;
	struct pks_pgtable_fault last;
};

#ifdef CONFIG_PKS_PG_TABLES
DECLARE_STATIC_KEY_FALSE(pks_pgtables_enabled);

struct page *__pks_pgtable_alloc(gfp_t gfp);
bool __pks_pgtable_free(struct page *page);
void pks_pgtable_flush_untag(void);
void __pks_pgtable_account(enum pks_pgtable_level level, bool allocated);
void pks_pgtable_read_counts(struct pks_pgtable_counts *counts);
struct page *pks_direct_map_table_alloc(void);
bool pks_direct_map_table_free(struct page *page);
bool pks_page_has_pgtable_key(struct page *page);
void pks_pgtable_walk(struct mm_struct *mm, struct pks_pgtable_walk *walk);
struct grouped_pages_cache *pks_pgtables_cache(bool direct_map);
void pks_pgtable_read_faults(struct pks_pgtable_faults *faults);
void pks_pgtable_expect_fault(bool expect);
unsigned long pks_pgtable_windows(void);
bool pks_untag_boot_table(struct page *page);

static inline struct page *pks_pgtable_alloc(gfp_t gfp)
{
	if (!static_branch_likely(&pks_pgtables_enabled))
		return NULL;
	return __pks_pgtable_alloc(gfp);
}

static inline bool pks_pgtable_free(struct page *page)
{
	if (!static_branch_likely(&pks_pgtables_enabled))
		return false;
	return __pks_pgtable_free(page);
}

/* Called by each level's constructor and destructor, or where a level has none. */
static inline void pks_pgtable_account(enum pks_pgtable_level level, bool allocated)
{
	if (static_branch_likely(&pks_pgtables_enabled))
		__pks_pgtable_account(level, allocated);
}
#else
static inline struct page *pks_pgtable_alloc(gfp_t gfp)
{
	return NULL;
}

static inline bool pks_pgtable_free(struct page *page)
{
	return false;
}

static inline void pks_pgtable_account(enum pks_pgtable_level level, bool allocated)
{
}

static inline void pks_pgtable_read_counts(struct pks_pgtable_counts *counts)
{
}

static inline void pks_pgtable_flush_untag(void)
{
}

static inline struct page *pks_direct_map_table_alloc(void)
{
	return NULL;
}

static inline bool pks_direct_map_table_free(struct page *page)
{
	return false;
}

static inline bool pks_page_has_pgtable_key(struct page *page)
{
	return false;
}

static inline void pks_pgtable_walk(struct mm_struct *mm, struct pks_pgtable_walk *walk)
{
}

static inline struct grouped_pages_cache *pks_pgtables_cache(bool direct_map)
{
	return NULL;
}

static inline void pks_pgtable_read_faults(struct pks_pgtable_faults *faults)
{
	*faults = (struct pks_pgtable_faults) {};
}

static inline void pks_pgtable_expect_fault(bool expect)
{
}

static inline bool pks_untag_boot_table(struct page *page)
{
	return true;
}
#endif

#endif /* _LINUX_PKS_PGTABLES_H */

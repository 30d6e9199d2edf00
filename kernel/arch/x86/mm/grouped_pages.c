// SPDX-License-Identifier: GPL-2.0
/*
 * x86 direct-map protections for grouped page caches. Each call covers a whole
 * block, so CPA changes a 2M or 1G entry in place instead of splitting it.
 */

#include <linux/grouped_pages.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/set_memory.h>

#include <asm/pgtable_types.h>

unsigned long grouped_pages_direct_map_size(struct page *page)
{
	unsigned int level;
	pte_t *pte;

	/* A collapse frees the tables it replaces after a grace period. */
	rcu_read_lock();
	pte = lookup_address((unsigned long)page_address(page), &level);
	rcu_read_unlock();
	return pte ? page_level_size(level) : 0;
}

static unsigned long gp_addr(struct page *page)
{
	return (unsigned long)page_address(page);
}

unsigned int grouped_pages_collapse_direct_map(struct page *page, unsigned int nr_pages)
{
	if (!IS_ENABLED(CONFIG_X86_64))
		return 0;
	return set_memory_collapse(gp_addr(page), nr_pages);
}

static int gp_not_present_apply(struct page *page, unsigned int nr_pages, void *data)
{
	return set_memory_np(gp_addr(page), nr_pages);
}

static int gp_not_present_reset(struct page *page, unsigned int nr_pages, void *data)
{
	return set_memory_p(gp_addr(page), nr_pages);
}

/* Pages gone from the direct map, like secretmem, for users that map them elsewhere. */
const struct grouped_pages_prot grouped_pages_prot_not_present = {
	.name = "not-present",
	.apply = gp_not_present_apply,
	.reset = gp_not_present_reset,
};
EXPORT_SYMBOL_GPL(grouped_pages_prot_not_present);

static int gp_read_only_apply(struct page *page, unsigned int nr_pages, void *data)
{
	return set_memory_ro(gp_addr(page), nr_pages);
}

static int gp_read_only_reset(struct page *page, unsigned int nr_pages, void *data)
{
	return set_memory_rw(gp_addr(page), nr_pages);
}

const struct grouped_pages_prot grouped_pages_prot_read_only = {
	.name = "read-only",
	.apply = gp_read_only_apply,
	.reset = gp_read_only_reset,
};
EXPORT_SYMBOL_GPL(grouped_pages_prot_read_only);

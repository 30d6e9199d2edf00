/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Grouped page cache: 4K pages carved from PMD-sized blocks whose direct-map
 * protection is changed once per block, so the direct map stays mapped large.
 */
#ifndef _LINUX_GROUPED_PAGES_H
#define _LINUX_GROUPED_PAGES_H

#include <linux/gfp.h>
#include <linux/mm_types.h>
#include <linux/numa.h>

struct grouped_pages_cache;

/**
 * struct grouped_pages_prot - the direct-map protection a cache's blocks share
 * @name: short name, shown in debugfs.
 * @apply: change the direct map of @nr_pages pages starting at @page to the
 *	protection. Called once per block, on the whole block. On failure the
 *	range must be left (or put back) as it was.
 * @reset: give @nr_pages pages starting at @page their default direct-map
 *	protection again, before they return to the page allocator.
 * @direct_map_writable: pages stay writable through the direct map, so the
 *	cache may zero them for __GFP_ZERO (inside @write_begin/@write_end).
 * @write_begin: optional; for a protection that write-protects pages without
 *	unmapping them, let this CPU write them until @write_end, which gets
 *	what this returned. Must not sleep; windows may nest.
 * @write_end: closes the window @write_begin opened.
 */
struct grouped_pages_prot {
	const char *name;
	int (*apply)(struct page *page, unsigned int nr_pages, void *data);
	int (*reset)(struct page *page, unsigned int nr_pages, void *data);
	bool direct_map_writable;
	unsigned long (*write_begin)(void);
	void (*write_end)(unsigned long saved);
};

/**
 * struct grouped_pages_stats - a snapshot of one cache's counters
 * @blocks: blocks held (PMD-sized and fallback).
 * @pages_cached: free pages held by the cache.
 * @pages_in_use: pages handed out and not freed yet.
 * @fallback_pages: pages that came from blocks smaller than PMD size.
 * @refills: blocks taken from the page allocator.
 * @direct_map_splits: direct-map mappings split by applying or resetting a
 *	protection (0 when the architecture cannot tell).
 * @direct_map_collapses: direct-map mappings made large again around blocks
 *	the cache protected or reset (0 where the architecture cannot).
 * @shrinker_scans: shrinker scan calls that were allowed to work.
 * @shrinker_freed: pages the shrinker gave back to the page allocator.
 * @whole_blocks_freed: blocks given back whole, in one reset call.
 * @partial_breaks: blocks with pages in use whose free pages were given back.
 * @alloc_failures: allocations that returned NULL.
 * @apply_failures: failed @apply calls of the protection.
 * @reset_failures: failed @reset calls; those pages stay in the cache.
 * @bad_frees: frees of foreign pages and double frees, refused.
 * @reserve_allocs: allocations served from the reserve.
 */
struct grouped_pages_stats {
	unsigned long blocks;
	unsigned long pages_cached;
	unsigned long pages_in_use;
	unsigned long fallback_pages;
	unsigned long refills;
	unsigned long direct_map_splits;
	unsigned long direct_map_collapses;
	unsigned long shrinker_scans;
	unsigned long shrinker_freed;
	unsigned long whole_blocks_freed;
	unsigned long partial_breaks;
	unsigned long alloc_failures;
	unsigned long apply_failures;
	unsigned long reset_failures;
	unsigned long bad_frees;
	unsigned long reserve_allocs;
};

/* The largest reserve a cache may keep, in pages. */
#define GROUPED_PAGES_MAX_RESERVE	256

#ifdef CONFIG_GROUPED_PAGES

extern const struct grouped_pages_prot grouped_pages_prot_none;
/* x86 only: elsewhere nothing defines them, and a user fails to link. */
extern const struct grouped_pages_prot grouped_pages_prot_not_present;
extern const struct grouped_pages_prot grouped_pages_prot_read_only;

struct grouped_pages_cache *
grouped_pages_cache_create(const char *name, const struct grouped_pages_prot *prot,
			   void *prot_data, unsigned int reserve_pages);
int grouped_pages_cache_destroy(struct grouped_pages_cache *cache);
struct page *grouped_pages_alloc(struct grouped_pages_cache *cache, int nid, gfp_t gfp);
void grouped_pages_free(struct grouped_pages_cache *cache, struct page *page);
bool grouped_pages_owns(struct grouped_pages_cache *cache, struct page *page);
void grouped_pages_get_stats(struct grouped_pages_cache *cache,
			     struct grouped_pages_stats *stats);
unsigned long grouped_pages_direct_map_size(struct page *page);
unsigned int grouped_pages_collapse_direct_map(struct page *page, unsigned int nr_pages);

#else /* !CONFIG_GROUPED_PAGES */

static inline struct grouped_pages_cache *
grouped_pages_cache_create(const char *name, const struct grouped_pages_prot *prot,
			   void *prot_data, unsigned int reserve_pages)
{
	return NULL;
}

static inline int grouped_pages_cache_destroy(struct grouped_pages_cache *cache)
{
	return 0;
}

static inline struct page *grouped_pages_alloc(struct grouped_pages_cache *cache,
					       int nid, gfp_t gfp)
{
	return NULL;
}

static inline void grouped_pages_free(struct grouped_pages_cache *cache, struct page *page)
{
}

static inline bool grouped_pages_owns(struct grouped_pages_cache *cache, struct page *page)
{
	return false;
}

static inline void grouped_pages_get_stats(struct grouped_pages_cache *cache,
					   struct grouped_pages_stats *stats)
{
	*stats = (struct grouped_pages_stats){};
}

static inline unsigned long grouped_pages_direct_map_size(struct page *page)
{
	return 0;
}

#endif /* CONFIG_GROUPED_PAGES */

#endif /* _LINUX_GROUPED_PAGES_H */

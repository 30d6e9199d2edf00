/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Hooks into the grouped page cache for its KUnit suites, the selftests'
 * debugfs interface (CONFIG_GROUPED_PAGES_TEST) and the benchmark
 * (CONFIG_GROUPED_PAGES_BENCH): not an API for users of the cache. Exported
 * for KUnit modules only (EXPORT_SYMBOL_IF_KUNIT).
 */
#ifndef _LINUX_GROUPED_PAGES_TESTING_H
#define _LINUX_GROUPED_PAGES_TESTING_H

#include <linux/grouped_pages.h>

struct shrinker;

#ifdef CONFIG_GROUPED_PAGES

struct shrinker *grouped_pages_cache_shrinker(struct grouped_pages_cache *cache);
void grouped_pages_set_failing_orders(struct grouped_pages_cache *cache,
				      unsigned long order_mask);
void grouped_pages_set_claim_hook(struct grouped_pages_cache *cache,
				  void (*hook)(void *arg), void *arg);
void grouped_pages_flush_refill(struct grouped_pages_cache *cache);
unsigned int grouped_pages_block_order(void);
unsigned long grouped_pages_break_partial(struct grouped_pages_cache *cache, int nid,
					  unsigned long nr_pages);
#if IS_ENABLED(CONFIG_KUNIT)
/* Static (VISIBLE_IF_KUNIT) in kernels without KUnit. */
gfp_t grouped_pages_block_gfp(gfp_t gfp, unsigned int order);
#endif

#else /* !CONFIG_GROUPED_PAGES */

static inline struct shrinker *grouped_pages_cache_shrinker(struct grouped_pages_cache *cache)
{
	return NULL;
}

static inline void grouped_pages_set_failing_orders(struct grouped_pages_cache *cache,
						    unsigned long order_mask)
{
}

static inline void grouped_pages_set_claim_hook(struct grouped_pages_cache *cache,
						void (*hook)(void *arg), void *arg)
{
}

static inline void grouped_pages_flush_refill(struct grouped_pages_cache *cache)
{
}

static inline unsigned int grouped_pages_block_order(void)
{
	return 0;
}

static inline unsigned long grouped_pages_break_partial(struct grouped_pages_cache *cache,
							int nid, unsigned long nr_pages)
{
	return 0;
}

static inline gfp_t grouped_pages_block_gfp(gfp_t gfp, unsigned int order)
{
	return gfp;
}

#endif /* CONFIG_GROUPED_PAGES */

#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/mm.h>

/*
 * For the KUnit suites: hold every page @nid can give, reserves below the min
 * watermark included (__GFP_NOFAIL may dip into those), on @hog until
 * grouped_pages_test_release_hog(). Return: how many pages.
 */
static inline unsigned long grouped_pages_test_exhaust_node(int nid, struct list_head *hog)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_THISNODE | __GFP_NORETRY | __GFP_NOWARN |
			  __GFP_MEMALLOC;
	unsigned long pages = 0;
	struct page *page;
	int order;

	for (order = MAX_PAGE_ORDER; order >= 0; order--) {
		while ((page = alloc_pages_node(nid, gfp, order))) {
			set_page_private(page, order);
			list_add(&page->lru, hog);
			pages += 1UL << order;
		}
	}
	return pages;
}

static inline void grouped_pages_test_release_hog(struct list_head *hog)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, hog, lru) {
		unsigned int order = page_private(page);

		list_del(&page->lru);
		set_page_private(page, 0);
		__free_pages(page, order);
	}
}

#endif /* _LINUX_GROUPED_PAGES_TESTING_H */

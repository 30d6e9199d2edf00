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

#endif /* _LINUX_GROUPED_PAGES_TESTING_H */

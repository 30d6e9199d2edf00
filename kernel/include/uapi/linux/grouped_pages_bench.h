/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ioctl interface of /sys/kernel/debug/grouped_pages_bench, through which the
 * gp_bench program measures the grouped page cache against what it replaces:
 * pages from the page allocator protected one by one.
 */
#ifndef _UAPI_LINUX_GROUPED_PAGES_BENCH_H
#define _UAPI_LINUX_GROUPED_PAGES_BENCH_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Who hands out the pages. */
#define GP_BENCH_GROUPED	0	/* a grouped cache, protected per block */
#define GP_BENCH_BASELINE	1	/* alloc_page(), then set_memory_*() per page */

/* The protection the pages get. */
#define GP_BENCH_PROT_RO	0	/* read-only */
#define GP_BENCH_PROT_NP	1	/* not present */
#define GP_BENCH_PROT_PKEY	2	/* a PKS key (CONFIG_PKS_PG_TABLES, a CPU with PKS) */

/* Most pages one hold, and one aging, may take. */
#define GP_BENCH_MAX_PAGES	(1 << 18)

/*
 * Fragment the free lists: allocate @nr_pages order-0 pages, then free them
 * in an order shuffled by @seed, all but one in @keep_one_in, which stay held
 * until GP_BENCH_RESET (or close) so that their 2M regions cannot merge.
 */
struct gp_bench_age {
	__u32 nr_pages;
	__u32 keep_one_in;
	__u32 seed;
	__u32 pad;
	__u64 regions_2m;	/* out: distinct 2M regions the held pages pin */
};

/* Allocate and protect @nr_pages pages and hold them. */
struct gp_bench_hold {
	__u32 mode;
	__u32 prot;
	__u32 nr_pages;
	__u32 pad;
	__u64 alloc_ns;		/* out: time to allocate (grouped: with refills) */
	__u64 protect_ns;	/* out: time in set_memory_*() (baseline only) */
	__u64 regions_2m;	/* out: distinct 2M regions the pages lie in */
	__u64 mapped_4k;	/* out: held pages mapped by 4K entries */
	__u64 refills;		/* out: blocks the grouped cache took */
	__u64 fallback_pages;	/* out: pages from blocks smaller than 2M */
	__u64 splits;		/* out: direct-map mappings this hold split itself */
};

/* Give the held pages back; for a grouped cache, shrink it to empty. */
struct gp_bench_release {
	__u64 free_ns;		/* out: time to free (baseline: with the reset) */
	__u64 shrink_ns;	/* out: time the shrinker took (grouped only) */
	__u64 blocks_freed;	/* out: blocks the shrinker gave back */
	__u64 pages_left;	/* out: pages the cache still holds afterwards */
	__u64 splits;		/* out: direct-map mappings this release split itself */
};

/*
 * @iterations times: allocate one page and free it again, from a read-only
 * grouped cache of its own (warmed first, so no refill is timed) or from the
 * page allocator. One caller per CPU may run it at once.
 */
struct gp_bench_fastpath {
	__u32 mode;
	__u32 iterations;
	__u64 ns;		/* out */
};

/* Protect and reset one 2M-aligned block in one call each, as a refill does. */
struct gp_bench_block_prot {
	__u32 prot;
	__u32 pad;
	__u64 protect_ns;	/* out */
	__u64 reset_ns;		/* out */
	__u64 mapped_2m;	/* out: 1 if the block was still mapped at 2M or more */
};

/*
 * Take every free 2M block (without reclaim or compaction), so that refills can
 * only fall back to smaller blocks; @give: give them back.
 */
struct gp_bench_take_2m {
	__u32 give;
	__u32 pad;
	__u64 blocks;		/* out: blocks taken, or given back */
};

#define GP_BENCH_IOC_MAGIC	'b'
#define GP_BENCH_AGE		_IOWR(GP_BENCH_IOC_MAGIC, 1, struct gp_bench_age)
#define GP_BENCH_HOLD		_IOWR(GP_BENCH_IOC_MAGIC, 2, struct gp_bench_hold)
#define GP_BENCH_RELEASE	_IOR(GP_BENCH_IOC_MAGIC, 3, struct gp_bench_release)
#define GP_BENCH_FASTPATH	_IOWR(GP_BENCH_IOC_MAGIC, 4, struct gp_bench_fastpath)
#define GP_BENCH_BLOCK_PROT	_IOWR(GP_BENCH_IOC_MAGIC, 5, struct gp_bench_block_prot)
#define GP_BENCH_RESET		_IO(GP_BENCH_IOC_MAGIC, 6)
#define GP_BENCH_TAKE_2M	_IOWR(GP_BENCH_IOC_MAGIC, 7, struct gp_bench_take_2m)

#endif /* _UAPI_LINUX_GROUPED_PAGES_BENCH_H */

/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ioctl interface of /sys/kernel/debug/grouped_pages_test, used by the
 * grouped_pages kselftests to drive a test cache from userspace.
 */
#ifndef _UAPI_LINUX_GROUPED_PAGES_TEST_H
#define _UAPI_LINUX_GROUPED_PAGES_TEST_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Most pages one request may allocate, and most the test cache hands out. */
#define GP_TEST_MAX_BATCH	4096
#define GP_TEST_MAX_PAGES	(1 << 18)

/* Allocate @count pages; their handles are @first .. @first + @count - 1. */
struct gp_test_alloc {
	__u32 count;
	__u32 atomic;		/* allocate without sleeping */
	__u64 first;		/* out */
};

/* Free the pages with handles @first .. @first + @count - 1. */
struct gp_test_free {
	__u64 first;
	__u32 count;
	__u32 pad;
};

/* Run the shrinker on every node, as reclaim would with GFP_KERNEL. */
struct gp_test_shrink {
	__u64 nr_to_scan;
	__u64 freed;		/* out */
};

/* A snapshot of the test cache's counters, and of its direct map. */
struct gp_test_stats {
	__u64 blocks;
	__u64 pages_cached;
	__u64 pages_in_use;
	__u64 fallback_pages;
	__u64 refills;
	__u64 direct_map_splits;
	__u64 shrinker_scans;
	__u64 shrinker_freed;
	__u64 whole_blocks_freed;
	__u64 partial_breaks;
	__u64 alloc_failures;
	__u64 bad_frees;
	__u64 handles_live;	/* pages the test interface holds */
	__u64 pages_not_protected; /* held pages whose direct map lacks the protection */
};

#define GP_TEST_IOC_MAGIC	'G'
#define GP_TEST_ALLOC		_IOWR(GP_TEST_IOC_MAGIC, 1, struct gp_test_alloc)
#define GP_TEST_FREE		_IOW(GP_TEST_IOC_MAGIC, 2, struct gp_test_free)
#define GP_TEST_FREE_ALL	_IO(GP_TEST_IOC_MAGIC, 3)
#define GP_TEST_SHRINK		_IOWR(GP_TEST_IOC_MAGIC, 4, struct gp_test_shrink)
#define GP_TEST_STATS		_IOR(GP_TEST_IOC_MAGIC, 5, struct gp_test_stats)

#endif /* _UAPI_LINUX_GROUPED_PAGES_TEST_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Protection keys for supervisor pages (PKS): a 4-bit key in each kernel PTE
 * selects two bits of the per-CPU IA32_PKRS MSR, access-disable and
 * write-disable, that apply to supervisor data accesses.
 */
#ifndef _ASM_X86_PKS_H
#define _ASM_X86_PKS_H

#include <linux/types.h>

#define PKS_KEY_DEFAULT		0
/* The key page-table pages carry in the direct map. */
#define PKS_KEY_PGTABLES	1

#define PKR_AD_BIT		0x1u
#define PKR_WD_BIT		0x2u
#define PKR_BITS_PER_PKEY	2
#define PKRS_AD(key)		(PKR_AD_BIT << ((key) * PKR_BITS_PER_PKEY))
#define PKRS_WD(key)		(PKR_WD_BIT << ((key) * PKR_BITS_PER_PKEY))

/* Permissive for now: write-protecting every page-table writer is a later step. */
#define PKS_DEFAULT_PKRS	0

#ifdef CONFIG_PKS_PG_TABLES
void setup_pks(void);
bool pks_available(void);
#else
static inline void setup_pks(void) { }
static inline bool pks_available(void) { return false; }
#endif

#endif /* _ASM_X86_PKS_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PKRS across interrupts, exceptions and context switches, for PKS page
 * tables: a handler runs with the default PKRS, never inside the page-table
 * write window it interrupted, and gives the interrupted context its own
 * back on exit. No window spans a context switch. Used from noinstr code.
 */
#ifndef _ASM_X86_PKS_ENTRY_H
#define _ASM_X86_PKS_ENTRY_H

#include <linux/percpu.h>
#include <linux/sched.h>

#include <asm/msr.h>
#include <asm/pks.h>

#ifdef CONFIG_PKS_PG_TABLES
/* The PKRS value of this CPU, so that unchanged values are not written again. */
DECLARE_PER_CPU(u32, pks_pkrs);
/* What the windows cost: MSR writes, not windows (nested ones write nothing). */
DECLARE_PER_CPU(unsigned long, pks_pkrs_writes);
/* PKRS outside write windows: 0 until page tables are write-protected. */
extern u32 pks_default_pkrs;
/* Set by a fault let through in warn mode: its context resumes with writes allowed. */
DECLARE_PER_CPU(bool, pks_fault_resume_writable);
/* The PKRS of the context the last interrupt or exception (not NMI) interrupted. */
DECLARE_PER_CPU(u32, pks_interrupted_pkrs);

/* The cached PKRS while the MSR is being written: whoever interrupts reads the MSR. */
#define PKS_PKRS_CHANGING	(~0U)

/*
 * Writing PKRS takes two steps, the MSR and its cached copy, and an
 * interrupt or NMI may come between them. While the MSR changes, the cache
 * says PKS_PKRS_CHANGING: an interrupt then cannot trust it, reads the MSR
 * itself, and so never runs its handler with page tables writable because
 * the cache already showed the default. @between, NULL but in the KUnit
 * suite, stands for an interrupt arriving between the steps.
 */
static __always_inline void __pks_write_pkrs(u32 pkrs, void (*between)(void))
{
	if (this_cpu_read(pks_pkrs) == pkrs)
		return;
	this_cpu_write(pks_pkrs, PKS_PKRS_CHANGING);
	if (between)
		between();
	native_wrmsrl(MSR_IA32_PKRS, pkrs);
	if (between)
		between();
	this_cpu_write(pks_pkrs, pkrs);
	this_cpu_inc(pks_pkrs_writes);
}

static __always_inline void pks_write_pkrs(u32 pkrs)
{
	__pks_write_pkrs(pkrs, NULL);
}

/*
 * What an interrupt found, to give back on its exit: the PKRS in effect
 * (low half) and the cached value (high half), which is PKS_PKRS_CHANGING
 * when the interrupt came in the middle of a write.
 */
static __always_inline u64 pks_entry_state(u32 cached, u32 pkrs)
{
	return (u64)cached << 32 | pkrs;
}

static __always_inline u64 pks_nmi_enter(void)
{
	u32 cached = this_cpu_read(pks_pkrs), pkrs = cached;

	if (unlikely(cached == PKS_PKRS_CHANGING))
		pkrs = (u32)__rdmsr(MSR_IA32_PKRS);
	pks_write_pkrs(pks_default_pkrs);
	return pks_entry_state(cached, pkrs);
}

/* A PK fault reports the PKRS it faulted with: an NMI leaves that record alone. */
static __always_inline u64 pks_irqentry_enter(void)
{
	u64 state = pks_nmi_enter();

	this_cpu_write(pks_interrupted_pkrs, (u32)state);
	return state;
}

/* Back to what the interrupted context had, the middle of a write included. */
static __always_inline void pks_entry_restore(u32 cached, u32 pkrs)
{
	pks_write_pkrs(pkrs);
	if (unlikely(cached == PKS_PKRS_CHANGING))
		this_cpu_write(pks_pkrs, PKS_PKRS_CHANGING);
}

static __always_inline void pks_irqentry_exit(u64 state)
{
	u32 cached = state >> 32, pkrs = (u32)state;

	if (unlikely(this_cpu_read(pks_fault_resume_writable))) {
		this_cpu_write(pks_fault_resume_writable, false);
		pkrs = pks_pkrs_writable(pkrs);
		if (cached != PKS_PKRS_CHANGING)
			cached = pkrs;
	}
	pks_entry_restore(cached, pkrs);
}

/*
 * An NMI, #MC or #DB may hit between a fault handler setting the flag above
 * and that fault's own exit: it leaves the flag to that exit.
 */
static __always_inline void pks_nmi_exit(u64 state)
{
	pks_entry_restore(state >> 32, (u32)state);
}

/*
 * No window outlives a context switch: windows and lazy MMU sections run
 * with preemption off. A warned-about fault's opening ends here.
 */
static __always_inline void pks_switch_to(struct task_struct *next)
{
	pks_write_pkrs(pks_default_pkrs);
}
#else
static inline void pks_switch_to(struct task_struct *next) { }
#endif

#endif /* _ASM_X86_PKS_ENTRY_H */

/* SPDX-License-Identifier: GPL-2.0 */
/* Reading counters of /proc and debugfs files, for gp_stress and gp_bench. */
#ifndef GP_PROC_H
#define GP_PROC_H

#include <stdio.h>
#include <string.h>

/* A number, decimal or 0x hex, from a "name value" line of a /proc or debugfs file; else -1. */
static inline long long read_field(const char *path, const char *name)
{
	char line[256], key[128];
	long long value, found = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127[^: ]%*[: ]%lli", key, &value) == 2 && !strcmp(key, name)) {
			found = value;
			break;
		}
	}
	fclose(f);
	return found;
}

#endif /* GP_PROC_H */

// SPDX-License-Identifier: Apache-2.0
/* Facts about the node: host name, OS, kernel, boot id, agent version. */
#ifndef VIGIL_AGENT_HOSTINFO_H
#define VIGIL_AGENT_HOSTINFO_H

typedef struct {
	char hostname[256];
	char os[256];
	char kernel[256];
	char boot_id[64];
	char agent_version[64];
} hostinfo_t;

/* Read the facts; hostname overrides the kernel's name if not empty.
 * proc_root is where procfs is mounted. Missing facts are left empty. */
void hostinfo_read(hostinfo_t *h, const char *hostname, const char *proc_root);

/* PRETTY_NAME (else NAME VERSION_ID) from the text of an os-release file
 * into out. Pure. Return 0, or -1 if neither is there. */
int hostinfo_parse_os_release(const char *text, char *out, unsigned outlen);

#endif

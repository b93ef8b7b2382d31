// SPDX-License-Identifier: Apache-2.0
/* Frame budgets, the Batch scan and the field caps (see budget.h). */
#include "ingest/budget.h"

#include <stdlib.h>
#include <string.h>

#define BUDGET_BASE ((size_t)256 * 1024)
#define SCAN_DEPTH_MAX 32
#define CUT_MARKER "...[truncated]"
#define CUT_MARKER_LEN (sizeof(CUT_MARKER) - 1)

size_t budget_unpack(size_t n)
{
	return BUDGET_BASE + n * 16;
}

/* An inventory is the largest a frame grows once encoded: each container's
 * settings and findings become state JSON, counted at three times its
 * text. Privileged containers of a real node (every capability, a dozen
 * mounts, most posture rules raised) take about 18 times their wire
 * size; 32 leaves room for more labels and mounts than tests have seen. */
size_t budget_job(size_t n, size_t n_events)
{
	return BUDGET_BASE + n * 32 + n_events * 256;
}

/* ---- the scan ---------------------------------------------------------- */

static int varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return -1;
		uint8_t b = p[(*pos)++];
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* One field of p[0..len) from *pos: its number, wire type, and for a
 * length-delimited one its bytes. Return 0, or -1 when malformed. */
static int next_field(const uint8_t *p, size_t len, size_t *pos, uint32_t *num, const uint8_t **val,
		      size_t *vlen)
{
	uint64_t key, v;
	if (varint(p, len, pos, &key) != 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return -1;
	*num = (uint32_t)(key >> 3);
	*val = NULL;
	switch (key & 7) {
	case 0:
		return varint(p, len, pos, &v);
	case 1:
	case 5: {
		size_t w = (key & 7) == 1 ? 8 : 4;
		if (len - *pos < w)
			return -1;
		*pos += w;
		return 0;
	}
	case 2:
		if (varint(p, len, pos, &v) != 0 || v > len - *pos)
			return -1;
		*val = p + *pos;
		*vlen = (size_t)v;
		*pos += (size_t)v;
		return 0;
	default:
		return -1; /* groups and reserved types */
	}
}

/* Walk message bytes of type d; set *nul if one of its strings holds a NUL. */
static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth,
		bool *nul)
{
	if (depth > SCAN_DEPTH_MAX)
		return -1;
	size_t pos = 0;
	while (pos < len) {
		uint32_t num;
		const uint8_t *val;
		size_t vlen = 0;
		if (next_field(p, len, &pos, &num, &val, &vlen) != 0)
			return -1;
		if (!val)
			continue;
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
		if (!f)
			continue;
		if (f->type == PROTOBUF_C_TYPE_STRING && memchr(val, 0, vlen))
			*nul = true;
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
			 walk(f->descriptor, val, vlen, depth + 1, nul) != 0)
			return -1;
	}
	return 0;
}

static int add_event(budget_scan_t *s, size_t *cap, size_t max, uint32_t off, uint32_t len,
		     bool nul)
{
	size_t i = s->n_events++;
	if (s->n_events > max) {
		free(s->spans);
		free(s->marks);
		s->spans = NULL;
		s->marks = NULL;
		return 0;
	}
	if (i == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		budget_span_t *sp = realloc(s->spans, nc * sizeof(*sp));
		if (sp)
			s->spans = sp;
		uint8_t *mk = realloc(s->marks, nc);
		if (mk)
			s->marks = mk;
		if (!sp || !mk)
			return -1;
		*cap = nc;
	}
	s->spans[i] = (budget_span_t){off, len};
	s->marks[i] = nul ? BUDGET_MARK_NUL : 0;
	s->n_nul += nul;
	return 0;
}

int budget_scan(const uint8_t *buf, size_t len, size_t max_events, budget_scan_t *out)
{
	memset(out, 0, sizeof(*out));
	if (len > UINT32_MAX)
		return -1;
	size_t pos = 0, cap = 0;
	while (pos < len) {
		uint32_t num;
		const uint8_t *val;
		size_t vlen = 0;
		if (next_field(buf, len, &pos, &num, &val, &vlen) != 0)
			goto bad;
		if (num != VIGIL__V1__AGENT_MESSAGE__MSG_BATCH || !val)
			continue;
		if (out->is_batch)
			goto bad; /* a second Batch would be merged into the first */
		out->is_batch = true;
		size_t bpos = 0;
		while (bpos < vlen) {
			uint32_t bnum;
			const uint8_t *ev;
			size_t elen = 0;
			if (next_field(val, vlen, &bpos, &bnum, &ev, &elen) != 0)
				goto bad;
			if (bnum != 2 || !ev) /* Batch.events */
				continue;
			bool nul = false;
			if (out->n_events < max_events &&
			    walk(&vigil__v1__event__descriptor, ev, elen, 0, &nul) != 0)
				goto bad;
			if (add_event(out, &cap, max_events, (uint32_t)(ev - buf), (uint32_t)elen,
				      nul) != 0)
				goto bad;
		}
	}
	return 0;
bad:
	budget_scan_free(out);
	return -1;
}

void budget_scan_free(budget_scan_t *s)
{
	if (!s)
		return;
	free(s->spans);
	free(s->marks);
	memset(s, 0, sizeof(*s));
}

/* ---- the caps ------------------------------------------------------------ */

/* Cut s to at most max bytes on a UTF-8 boundary, with a marker when
 * there is room. Return true if it was cut. */
static bool cap_string(char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n <= max)
		return false;
	bool marker = max > CUT_MARKER_LEN * 2;
	size_t cut = marker ? max - CUT_MARKER_LEN : max;
	while (cut && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	if (marker)
		memcpy(s + cut, CUT_MARKER, CUT_MARKER_LEN + 1);
	else
		s[cut] = '\0';
	return true;
}

static bool cap_strv(char **v, size_t *n, const budget_caps_t *caps)
{
	bool cut = false;
	size_t total = 0;
	for (size_t i = 0; i < *n; i++) {
		cut |= cap_string(v[i], caps->string_max);
		size_t l = v[i] ? strlen(v[i]) : 0;
		if (total + l > caps->strv_max) {
			size_t room = caps->strv_max - total;
			cut = true;
			if (room > CUT_MARKER_LEN * 2) {
				cap_string(v[i], room);
				*n = i + 1;
			} else {
				*n = i;
			}
			break;
		}
		total += l;
	}
	return cut;
}

static bool cap_message(ProtobufCMessage *m, const budget_caps_t *caps)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	/* an inventory's lists are the node's containers, not one thing's facts */
	bool own_lists = d == &vigil__v1__inventory__descriptor ||
			 d == &vigil__v1__image_inventory__descriptor;
	bool cut = false;
	char *base = (char *)m;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t *n = (size_t *)(base + f->quantifier_offset);
			void **items = *(void ***)(base + f->offset);
			if (!own_lists && *n > caps->list_max) {
				*n = caps->list_max;
				cut = true;
			}
			if (f->type == PROTOBUF_C_TYPE_STRING)
				cut |= cap_strv((char **)items, n, caps);
			else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
				for (size_t k = 0; k < *n; k++)
					cut |= cap_message(items[k], caps);
		} else if (f->type == PROTOBUF_C_TYPE_STRING) {
			cut |= cap_string(*(char **)(base + f->offset), caps->string_max);
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
			if (sub)
				cut |= cap_message(sub, caps);
		}
	}
	return cut;
}

bool budget_caps_event(Vigil__V1__Event *e, const budget_caps_t *caps)
{
	bool cut = cap_message(&e->base, caps);
	if (cut && e->body_case == VIGIL__V1__EVENT__BODY_PROCESS_EXEC)
		e->process_exec->truncated = 1;
	return cut;
}

// SPDX-License-Identifier: Apache-2.0
/* Bounded disk spool (see spool.h for the format and the fsync policy). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

#define SPOOL_MAGIC 0x56475331u /* "VGS1" */
#define SPOOL_RECORD_MAX (64u * 1024 * 1024)
#define SEG_MIN (64u * 1024)
#define SEG_MAX (16u * 1024 * 1024)
#define ACTIVE_RECYCLE_BYTES (256u * 1024)
/* Skipped ranges above the acknowledged seq; a split waits while full. */
#define SKIPS_MAX 64
#define META_MAX (256 + SKIPS_MAX * 48)

typedef struct {
	uint64_t lo, hi;
} skip_t;

typedef struct {
	uint64_t no; /* file name number */
	uint64_t first_seq, last_seq;
	uint64_t size;
	uint32_t n_records;
} seg_t;

struct spool {
	char *dir;
	uint64_t max_bytes;
	uint64_t seg_max;
	int64_t fsync_ms;
	seg_t *segs; /* oldest first; the last one is the active one if active_fd >= 0 */
	size_t n_segs;
	int active_fd;
	uint64_t next_no;
	uint64_t last_seq, acked_seq;
	uint64_t bytes;
	bool dirty;
	bool meta_dirty;
	bool meta_unsynced;    /* written, not yet made durable */
	bool fs_full_logged;   /* until a write works without dropping */
	spool_drops_t pending; /* drops not yet reported */
	spool_drops_t total;
	uint64_t torn;
	uint64_t write_errors;
	bool in_error;		/* a write failed; logged once until one succeeds */
	uint64_t run_first_seq; /* first seq appended since open, 0 if none */
	bool welcomed;		/* spool_set_committed was called since open */
	/* records never to be read again, sorted and apart: replaced batches
	 * and the pieces of a replacement that failed halfway */
	skip_t skips[SKIPS_MAX];
	size_t n_skips;
	uint64_t replacing; /* seq of the record whose pieces are being appended */
	/* read cursor: the record after seq cur_seq starts at cur_off of segment cur_no */
	bool cur_valid;
	uint64_t cur_no, cur_off, cur_seq;
};

/* ---- CRC32C ------------------------------------------------------------------ */

static uint32_t crc_table[256];

static void crc_init(void)
{
	if (crc_table[1])
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t spool_crc32c(uint32_t crc, const void *data, size_t n)
{
	crc_init();
	const uint8_t *p = data;
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- record header ------------------------------------------------------------ */

typedef struct {
	uint32_t len;
	uint64_t seq;
	uint32_t n_events;
	int64_t first_ns, last_ns;
	uint64_t piece_of; /* seq of the record this one replaces a piece of, or 0 */
} hdr_t;

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Layout: magic 0, len 4, seq 8, n_events 16, piece_of low half 20, first
 * 24, last 32, piece_of high half 40, crc 44 (over bytes 0..43 and the
 * payload). Records written before pieces existed have zeros there. */
static void hdr_encode(uint8_t out[SPOOL_HEADER_BYTES], const hdr_t *h, const uint8_t *payload)
{
	memset(out, 0, SPOOL_HEADER_BYTES);
	put32(out, SPOOL_MAGIC);
	put32(out + 4, h->len);
	put64(out + 8, h->seq);
	put32(out + 16, h->n_events);
	put32(out + 20, (uint32_t)h->piece_of);
	put64(out + 24, (uint64_t)h->first_ns);
	put64(out + 32, (uint64_t)h->last_ns);
	put32(out + 40, (uint32_t)(h->piece_of >> 32));
	uint32_t crc = spool_crc32c(0, out, 44);
	crc = spool_crc32c(crc, payload, h->len);
	put32(out + 44, crc);
}

/* Validate the record at p (avail bytes). Return its total size, or 0. */
static size_t rec_check(const uint8_t *p, size_t avail, hdr_t *h)
{
	if (avail < SPOOL_HEADER_BYTES || get32(p) != SPOOL_MAGIC)
		return 0;
	h->len = get32(p + 4);
	if (h->len > SPOOL_RECORD_MAX || h->len > avail - SPOOL_HEADER_BYTES)
		return 0;
	h->seq = get64(p + 8);
	h->n_events = get32(p + 16);
	h->first_ns = (int64_t)get64(p + 24);
	h->last_ns = (int64_t)get64(p + 32);
	h->piece_of = (uint64_t)get32(p + 40) << 32 | get32(p + 20);
	uint32_t crc = spool_crc32c(0, p, 44);
	crc = spool_crc32c(crc, p + SPOOL_HEADER_BYTES, h->len);
	if (crc != get32(p + 44) || h->seq == 0)
		return 0;
	return SPOOL_HEADER_BYTES + h->len;
}

/* Offset of the next magic at or after off, or size. */
static size_t resync(const uint8_t *p, size_t size, size_t off)
{
	uint8_t m[4];
	put32(m, SPOOL_MAGIC);
	if (off >= size)
		return size;
	const uint8_t *hit = memmem(p + off, size - off, m, 4);
	return hit ? (size_t)(hit - p) : size;
}

/* ---- skipped records ---------------------------------------------------------------- */

static bool skipped(const spool_t *sp, uint64_t seq)
{
	for (size_t i = 0; i < sp->n_skips; i++)
		if (seq >= sp->skips[i].lo && seq <= sp->skips[i].hi)
			return true;
	return false;
}

/* Add lo..hi, merging with its neighbours. Return -1 if the set is full. */
static int skip_add(spool_t *sp, uint64_t lo, uint64_t hi)
{
	size_t i = 0;
	while (i < sp->n_skips && sp->skips[i].hi + 1 < lo)
		i++;
	if (i < sp->n_skips && sp->skips[i].lo <= hi + 1) {
		skip_t *k = &sp->skips[i];
		if (lo < k->lo)
			k->lo = lo;
		if (hi > k->hi)
			k->hi = hi;
		while (i + 1 < sp->n_skips && sp->skips[i + 1].lo <= k->hi + 1) {
			if (sp->skips[i + 1].hi > k->hi)
				k->hi = sp->skips[i + 1].hi;
			memmove(sp->skips + i + 1, sp->skips + i + 2,
				(sp->n_skips - i - 2) * sizeof(skip_t));
			sp->n_skips--;
		}
		return 0;
	}
	if (sp->n_skips == SKIPS_MAX)
		return -1;
	memmove(sp->skips + i + 1, sp->skips + i, (sp->n_skips - i) * sizeof(skip_t));
	sp->skips[i] = (skip_t){lo, hi};
	sp->n_skips++;
	return 0;
}

/* Take seq out again: it is the last one of its range (just added). */
static void skip_undo(spool_t *sp, uint64_t seq)
{
	for (size_t i = 0; i < sp->n_skips; i++) {
		skip_t *k = &sp->skips[i];
		if (k->hi != seq)
			continue;
		if (k->lo == seq) {
			memmove(sp->skips + i, sp->skips + i + 1,
				(sp->n_skips - i - 1) * sizeof(skip_t));
			sp->n_skips--;
		} else {
			k->hi--;
		}
		return;
	}
}

/* Forget the ranges that are acknowledged. Return true if any was. */
static bool skip_prune(spool_t *sp)
{
	size_t keep = 0;
	for (size_t i = 0; i < sp->n_skips; i++)
		if (sp->skips[i].hi > sp->acked_seq)
			sp->skips[keep++] = sp->skips[i];
	bool pruned = keep != sp->n_skips;
	sp->n_skips = keep;
	return pruned;
}

/* ---- files ------------------------------------------------------------------------ */

static void seg_path(const spool_t *sp, uint64_t no, char *out, size_t n)
{
	snprintf(out, n, "%s/seg-%020" PRIu64, sp->dir, no);
}

/* Write DIR/meta (write, rename). durable: sync it and the directory
 * entry too (spool_sync's schedule, or every write with fsync_ms = 0), so
 * that a power cut loses no drop count that the data's sync kept. */
static void write_meta(spool_t *sp, bool durable)
{
	durable |= sp->fsync_ms == 0;
	char path[4096], tmp[4096], text[META_MAX];
	snprintf(path, sizeof(path), "%s/meta", sp->dir);
	snprintf(tmp, sizeof(tmp), "%s/meta.tmp", sp->dir);
	int n = snprintf(text, sizeof(text),
			 "vigil-spool 1 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
			 " %" PRId64 "\n",
			 sp->last_seq, sp->acked_seq, sp->pending.batches, sp->pending.events,
			 sp->pending.first_ns, sp->pending.last_ns);
	/* then one line per skipped range (older agents read the first line) */
	for (size_t i = 0; i < sp->n_skips; i++)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "skip %" PRIu64 " %" PRIu64 "\n",
			      sp->skips[i].lo, sp->skips[i].hi);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_debug("spool: %s: %s", tmp, strerror(errno));
		return;
	}
	bool ok = write(fd, text, (size_t)n) == n;
	if (ok && durable && fdatasync(fd) != 0)
		ok = false;
	close(fd);
	if (!ok || rename(tmp, path) != 0)
		return;
	sp->meta_dirty = false;
	sp->meta_unsynced = !durable;
	if (durable) {
		int dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			sp->meta_unsynced = true;
		if (dfd >= 0)
			close(dfd);
	}
}

static void read_meta(spool_t *sp)
{
	char path[4096], text[256];
	snprintf(path, sizeof(path), "%s/meta", sp->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	uint64_t last = 0, acked = 0, db = 0, de = 0;
	int64_t f0 = 0, f1 = 0;
	if (fgets(text, sizeof(text), f) && sscanf(text,
						   "vigil-spool 1 %" SCNu64 " %" SCNu64 " %" SCNu64
						   " %" SCNu64 " %" SCNd64 " %" SCNd64,
						   &last, &acked, &db, &de, &f0, &f1) == 6) {
		sp->last_seq = last;
		sp->acked_seq = acked <= last ? acked : last;
		sp->pending.batches = db;
		sp->pending.events = de;
		sp->pending.first_ns = f0;
		sp->pending.last_ns = f1;
		uint64_t lo, hi;
		while (fgets(text, sizeof(text), f))
			if (sscanf(text, "skip %" SCNu64 " %" SCNu64, &lo, &hi) == 2 && lo <= hi &&
			    hi <= last && skip_add(sp, lo, hi) != 0)
				break;
	} else {
		log_warn("spool: %s does not parse; sequence numbers come from the records", path);
	}
	fclose(f);
}

/* Walk the records of a mapped segment: fill first/last seq and count. */
static void seg_scan(spool_t *sp, seg_t *s, const uint8_t *p, size_t size)
{
	size_t off = 0;
	while (off < size) {
		hdr_t h;
		size_t n = rec_check(p + off, size - off, &h);
		if (!n) {
			sp->torn++;
			off = resync(p, size, off + 1);
			continue;
		}
		if (!s->first_seq)
			s->first_seq = h.seq;
		if (h.seq > s->last_seq)
			s->last_seq = h.seq;
		s->n_records++;
		off += n;
		/* a piece of a replacement that the meta file does not know
		 * as done (the agent stopped while writing it): its record
		 * is read instead, so the piece never is */
		if (h.piece_of > sp->acked_seq && !skipped(sp, h.piece_of) && !skipped(sp, h.seq)) {
			if (skip_add(sp, h.seq, h.seq) != 0)
				log_error("spool: too many unfinished replacements; piece %" PRIu64
					  " of batch %" PRIu64 " may be sent twice",
					  h.seq, h.piece_of);
			else
				log_warn("spool: batch %" PRIu64 " is a piece of batch %" PRIu64
					 " whose replacement did not finish; skipped",
					 h.seq, h.piece_of);
		}
	}
}

static int map_file(const char *path, uint8_t **map, size_t *size, int *fd_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	*map = NULL;
	if (*size) {
		void *m = mmap(NULL, *size, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return -1;
		}
		*map = m;
	}
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const seg_t *x = a, *y = b;
	return x->no < y->no ? -1 : x->no > y->no;
}

static void unlink_seg(spool_t *sp, size_t i)
{
	char path[4096];
	seg_path(sp, sp->segs[i].no, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		log_warn("spool: cannot remove %s: %s", path, strerror(errno));
	sp->bytes -= sp->segs[i].size;
	memmove(sp->segs + i, sp->segs + i + 1, (sp->n_segs - i - 1) * sizeof(seg_t));
	sp->n_segs--;
}

static bool active_is(const spool_t *sp, size_t i)
{
	return sp->active_fd >= 0 && i == sp->n_segs - 1;
}

static void close_active(spool_t *sp)
{
	if (sp->active_fd < 0)
		return;
	if (sp->dirty)
		fdatasync(sp->active_fd);
	sp->dirty = false;
	close(sp->active_fd);
	sp->active_fd = -1;
}

static void add_drop(spool_drops_t *d, uint32_t events, int64_t first, int64_t last)
{
	if (!d->batches || first < d->first_ns)
		d->first_ns = first;
	if (!d->batches || last > d->last_ns)
		d->last_ns = last;
	d->batches++;
	d->events += events;
}

/* Drop segment i (the oldest), counting its unacknowledged batches. */
static void drop_seg(spool_t *sp, size_t i)
{
	if (active_is(sp, i))
		close_active(sp);
	seg_t *s = &sp->segs[i];
	if (s->last_seq > sp->acked_seq) {
		char path[4096];
		seg_path(sp, s->no, path, sizeof(path));
		uint8_t *p;
		size_t size;
		uint64_t batches = 0;
		if (map_file(path, &p, &size, NULL) == 0) {
			size_t off = 0;
			while (off < size) {
				hdr_t h;
				size_t n = rec_check(p + off, size - off, &h);
				if (!n) {
					off = resync(p, size, off + 1);
					continue;
				}
				if (h.seq > sp->acked_seq && !skipped(sp, h.seq)) {
					add_drop(&sp->pending, h.n_events, h.first_ns, h.last_ns);
					add_drop(&sp->total, h.n_events, h.first_ns, h.last_ns);
					batches++;
				}
				off += n;
			}
			if (p)
				munmap(p, size);
		}
		log_warn("spool: full (%" PRIu64 " bytes): dropped %" PRIu64
			 " unacknowledged batches (seq %" PRIu64 "..%" PRIu64 ")",
			 sp->max_bytes, batches, s->first_seq, s->last_seq);
	}
	/* the meta file must cover the seqs of every deleted record, and the
	 * drop counts must survive a power cut as the deletion does */
	write_meta(sp, true);
	unlink_seg(sp, i);
}

static int open_active(spool_t *sp)
{
	char path[4096];
	seg_t s = {.no = sp->next_no++};
	seg_path(sp, s.no, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	seg_t *ns = realloc(sp->segs, (sp->n_segs + 1) * sizeof(*ns));
	if (!ns) {
		close(fd);
		unlink(path);
		return -1;
	}
	sp->segs = ns;
	ns[sp->n_segs++] = s;
	sp->active_fd = fd;
	return 0;
}

spool_t *spool_open(const char *dir, uint64_t max_bytes, int64_t fsync_ms, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "spool: cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "spool: cannot open %s: %s", dir, strerror(errno));
		return NULL;
	}
	spool_t *sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->dir = strdup(dir))) {
		free(sp);
		closedir(d);
		snprintf(err, errlen, "spool: out of memory");
		return NULL;
	}
	sp->max_bytes = max_bytes;
	sp->fsync_ms = fsync_ms;
	sp->active_fd = -1;
	sp->seg_max = max_bytes / 8;
	if (sp->seg_max < SEG_MIN)
		sp->seg_max = SEG_MIN;
	if (sp->seg_max > SEG_MAX)
		sp->seg_max = SEG_MAX;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		unsigned long long no;
		char tail;
		if (sscanf(de->d_name, "seg-%llu%c", &no, &tail) != 1)
			continue;
		seg_t *ns = realloc(sp->segs, (sp->n_segs + 1) * sizeof(*ns));
		if (!ns)
			break;
		sp->segs = ns;
		memset(&ns[sp->n_segs], 0, sizeof(seg_t));
		ns[sp->n_segs++].no = no;
	}
	closedir(d);
	if (sp->n_segs > 1)
		qsort(sp->segs, sp->n_segs, sizeof(seg_t), seg_cmp);
	read_meta(sp);
	uint64_t max_seq = sp->last_seq;
	for (size_t i = 0; i < sp->n_segs;) {
		seg_t *s = &sp->segs[i];
		char path[4096];
		seg_path(sp, s->no, path, sizeof(path));
		uint8_t *p;
		size_t size;
		if (map_file(path, &p, &size, NULL) != 0) {
			log_warn("spool: cannot read %s: %s; skipped", path, strerror(errno));
			memmove(sp->segs + i, sp->segs + i + 1,
				(sp->n_segs - i - 1) * sizeof(seg_t));
			sp->n_segs--;
			continue;
		}
		s->size = size;
		seg_scan(sp, s, p, size);
		if (p)
			munmap(p, size);
		sp->bytes += size;
		if (s->last_seq > max_seq)
			max_seq = s->last_seq;
		if (s->no >= sp->next_no)
			sp->next_no = s->no + 1;
		i++;
	}
	sp->last_seq = max_seq;
	skip_prune(sp);
	/* delete what is acknowledged already; drop the oldest while over */
	for (size_t i = 0; i < sp->n_segs;) {
		if (sp->segs[i].last_seq <= sp->acked_seq)
			unlink_seg(sp, i);
		else
			i++;
	}
	while (sp->bytes > max_bytes && sp->n_segs)
		drop_seg(sp, 0);
	if (sp->n_skips)
		log_info("spool: %zu ranges of replaced batches are skipped", sp->n_skips);
	if (sp->torn)
		log_warn("spool: %" PRIu64 " damaged or torn records skipped", sp->torn);
	log_info("spool: %s: %zu segments, %" PRIu64 " bytes, last seq %" PRIu64
		 ", acknowledged %" PRIu64,
		 dir, sp->n_segs, sp->bytes, sp->last_seq, sp->acked_seq);
	write_meta(sp, false);
	return sp;
}

void spool_close(spool_t *sp)
{
	if (!sp)
		return;
	close_active(sp);
	write_meta(sp, false);
	free(sp->segs);
	free(sp->dir);
	free(sp);
}

/* A batch could not be stored: count it as dropped, unless it is a piece
 * of a replacement (the record it replaces stays). */
static void count_write_failure(spool_t *sp, uint32_t n_events, int64_t first, int64_t last,
				const char *why)
{
	sp->write_errors++;
	if (!sp->replacing) {
		add_drop(&sp->pending, n_events, first, last);
		add_drop(&sp->total, n_events, first, last);
	}
	if (!sp->in_error)
		log_error("spool: cannot store a batch in %s: %s; batches are dropped and "
			  "counted until writing works again",
			  sp->dir, why);
	sp->in_error = true;
	sp->meta_dirty = true;
}

/* Make room for need bytes. Return 0, or -1 if it can never fit. */
static int make_room(spool_t *sp, uint64_t need)
{
	if (need > sp->max_bytes)
		return -1;
	while (sp->bytes + need > sp->max_bytes && sp->n_segs)
		drop_seg(sp, 0);
	return 0;
}

static int try_write(spool_t *sp, const uint8_t *hdr, const uint8_t *data, size_t len)
{
	seg_t *s = &sp->segs[sp->n_segs - 1];
	struct iovec iov[2] = {{(void *)hdr, SPOOL_HEADER_BYTES}, {(void *)data, len}};
	size_t want = SPOOL_HEADER_BYTES + len;
	ssize_t n = writev(sp->active_fd, iov, 2);
	if (n == (ssize_t)want)
		return 0;
	int e = n < 0 ? errno : ENOSPC;
	/* take a partial record back so that the file stays clean */
	if (ftruncate(sp->active_fd, (off_t)s->size) != 0)
		log_debug("spool: ftruncate: %s", strerror(errno));
	errno = e;
	return -1;
}

/* The file system is full before the spool's cap: write again, dropping
 * the oldest segments one by one (as at the cap, counted) until the batch
 * fits or nothing is left to drop. Return true once written. */
static bool retry_write(spool_t *sp, const uint8_t *hdr, const uint8_t *data, size_t len,
			bool freed, int *err)
{
	for (;;) {
		if (sp->active_fd < 0 && open_active(sp) != 0) {
			*err = errno;
			if (!sp->n_segs)
				return false;
		} else if (freed) {
			if (try_write(sp, hdr, data, len) == 0)
				return true;
			*err = errno;
			if (*err != ENOSPC)
				return false;
		}
		/* drop the oldest segment, unless it is the empty active one */
		if (!sp->n_segs || (active_is(sp, 0) && sp->segs[0].n_records == 0))
			return false;
		if (!sp->in_error && !sp->fs_full_logged)
			log_warn("spool: the file system of %s is full below spool_max_bytes: "
				 "dropping the oldest batches to make room",
				 sp->dir);
		sp->fs_full_logged = true;
		drop_seg(sp, 0);
		freed = true;
	}
}

uint64_t spool_append(spool_t *sp, const uint8_t *data, size_t len, uint32_t n_events,
		      int64_t first_ns, int64_t last_ns)
{
	uint64_t need = SPOOL_HEADER_BYTES + (uint64_t)len;
	if (len == 0 || len > SPOOL_RECORD_MAX || make_room(sp, need) != 0) {
		count_write_failure(sp, n_events, first_ns, last_ns, "batch larger than the spool");
		return 0;
	}
	if (sp->active_fd >= 0 && sp->segs[sp->n_segs - 1].size + need > sp->seg_max)
		close_active(sp);
	if (sp->active_fd < 0 && open_active(sp) != 0) {
		count_write_failure(sp, n_events, first_ns, last_ns, strerror(errno));
		return 0;
	}
	hdr_t h = {(uint32_t)len, sp->last_seq + 1, n_events, first_ns, last_ns, sp->replacing};
	uint8_t hdr[SPOOL_HEADER_BYTES];
	hdr_encode(hdr, &h, data);
	bool retried_after_full = false;
	if (try_write(sp, hdr, data, len) != 0) {
		int e = errno;
		/* full file system: give acknowledged segments up (the active
		 * one too), then the oldest ones, until it fits */
		bool retried = false;
		if (e == ENOSPC) {
			bool freed = false;
			for (size_t i = 0; i < sp->n_segs;) {
				seg_t *g = &sp->segs[i];
				if (g->n_records && g->last_seq <= sp->acked_seq) {
					if (active_is(sp, i))
						close_active(sp);
					write_meta(sp, false);
					unlink_seg(sp, i);
					freed = true;
				} else {
					i++;
				}
			}
			retried = retry_write(sp, hdr, data, len, freed, &e);
			retried_after_full = retried;
		}
		if (!retried) {
			count_write_failure(sp, n_events, first_ns, last_ns, strerror(e));
			return 0;
		}
	}
	if (sp->in_error)
		log_info("spool: writing works again");
	sp->in_error = false;
	if (!retried_after_full)
		sp->fs_full_logged = false;
	seg_t *s = &sp->segs[sp->n_segs - 1];
	s->size += need;
	s->n_records++;
	if (!s->first_seq)
		s->first_seq = h.seq;
	s->last_seq = h.seq;
	sp->bytes += need;
	sp->last_seq = h.seq;
	if (!sp->run_first_seq)
		sp->run_first_seq = h.seq;
	sp->dirty = true;
	sp->meta_dirty = true;
	if (sp->fsync_ms == 0)
		spool_sync(sp);
	return h.seq;
}

int spool_read_after(spool_t *sp, uint64_t after, spool_rec_t *out)
{
	size_t start_i = 0;
	uint64_t start_off = 0;
	if (sp->cur_valid && after >= sp->cur_seq) {
		for (size_t i = 0; i < sp->n_segs; i++) {
			if (sp->segs[i].no == sp->cur_no) {
				start_i = i;
				start_off = sp->cur_off;
				break;
			}
		}
	}
	for (size_t i = start_i; i < sp->n_segs; i++) {
		seg_t *s = &sp->segs[i];
		if (!s->n_records || s->last_seq <= after)
			continue;
		char path[4096];
		seg_path(sp, s->no, path, sizeof(path));
		uint8_t *p;
		size_t size;
		if (map_file(path, &p, &size, NULL) != 0) {
			log_error("spool: cannot read %s: %s", path, strerror(errno));
			return -1;
		}
		size_t mapped = size;
		if (size > s->size)
			size = (size_t)s->size; /* a write in progress is not ours to read */
		size_t off = i == start_i && start_off <= size ? (size_t)start_off : 0;
		int rc = 0;
		while (off < size) {
			hdr_t h;
			size_t n = rec_check(p + off, size - off, &h);
			if (!n) {
				off = resync(p, size, off + 1);
				continue;
			}
			if (h.seq > after && !skipped(sp, h.seq)) {
				out->data = malloc(h.len);
				if (!out->data) {
					rc = -1;
					break;
				}
				memcpy(out->data, p + off + SPOOL_HEADER_BYTES, h.len);
				out->len = h.len;
				out->seq = h.seq;
				out->n_events = h.n_events;
				out->first_ns = h.first_ns;
				out->last_ns = h.last_ns;
				sp->cur_valid = true;
				sp->cur_no = s->no;
				sp->cur_off = off + n;
				sp->cur_seq = h.seq;
				rc = 1;
				break;
			}
			off += n;
		}
		if (p)
			munmap(p, mapped);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Whether a record with this seq is still in a segment file. */
static bool stored(const spool_t *sp, uint64_t seq)
{
	for (size_t i = 0; i < sp->n_segs; i++)
		if (sp->segs[i].n_records && seq >= sp->segs[i].first_seq &&
		    seq <= sp->segs[i].last_seq)
			return true;
	return false;
}

int spool_replace(spool_t *sp, const spool_rec_t *r, const spool_piece_t *pieces, size_t n)
{
	if (skipped(sp, r->seq))
		return 0;
	if (r->seq <= sp->acked_seq || skip_add(sp, r->seq, r->seq) != 0)
		return -1;
	/* r is skipped while its pieces are written: a segment dropped to
	 * make room does not count it as lost */
	uint64_t first = sp->last_seq + 1;
	size_t i = 0;
	sp->replacing = r->seq;
	for (; i < n; i++)
		if (!spool_append(sp, pieces[i].data, pieces[i].len, pieces[i].n_events,
				  pieces[i].first_ns, pieces[i].last_ns))
			break;
	sp->replacing = 0;
	if (i < n) {
		/* r is read again later; the pieces written never are */
		skip_undo(sp, r->seq);
		if (sp->last_seq >= first && skip_add(sp, first, sp->last_seq) != 0)
			log_error("spool: too many skipped ranges; batches %" PRIu64 "..%" PRIu64
				  " may be sent twice",
				  first, sp->last_seq);
		if (!stored(sp, r->seq)) {
			/* its segment went to make room meanwhile */
			add_drop(&sp->pending, r->n_events, r->first_ns, r->last_ns);
			add_drop(&sp->total, r->n_events, r->first_ns, r->last_ns);
		}
		write_meta(sp, false);
		return -1;
	}
	/* the pieces are written: this meta file makes them count, r never */
	write_meta(sp, false);
	return 0;
}

void spool_ack(spool_t *sp, uint64_t seq)
{
	if (seq <= sp->acked_seq)
		return;
	if (seq > sp->last_seq)
		seq = sp->last_seq;
	sp->acked_seq = seq;
	sp->meta_dirty = true;
	/* the meta file that forgets a skipped record also says it is
	 * acknowledged (see seg_scan) */
	bool deleted = skip_prune(sp);
	if (deleted)
		write_meta(sp, false);
	for (size_t i = 0; i < sp->n_segs;) {
		seg_t *s = &sp->segs[i];
		bool acked = s->n_records && s->last_seq <= seq;
		if (acked && active_is(sp, i)) {
			/* keep appending to a small active segment, unless
			 * writing failed lately (a full file system) */
			if (s->size < ACTIVE_RECYCLE_BYTES && !sp->in_error)
				break;
			close_active(sp);
		}
		if (acked) {
			if (!deleted)
				write_meta(sp, false);
			deleted = true;
			unlink_seg(sp, i);
		} else {
			i++;
		}
	}
}

void spool_set_committed(spool_t *sp, uint64_t committed)
{
	/* Batches appended since open, before the collector first answered,
	 * were never sent. If their numbers are already committed, the spool
	 * lost records the collector has (a wiped spool, or a power cut within
	 * fsync_ms): they must go out again under new numbers, not be taken
	 * as acknowledged. */
	uint64_t lo = sp->run_first_seq;
	uint64_t hi = committed < sp->last_seq ? committed : sp->last_seq;
	bool renumber = !sp->welcomed && lo && lo <= hi;
	sp->welcomed = true;
	if (committed > sp->last_seq) {
		log_warn("spool: the collector has committed up to seq %" PRIu64
			 " but this spool only reached %" PRIu64
			 " (spool wiped or restored?): numbering continues after %" PRIu64,
			 committed, sp->last_seq, committed);
		sp->last_seq = committed;
		sp->meta_dirty = true;
		write_meta(sp, false);
	}
	if (renumber) {
		log_warn("spool: batches %" PRIu64 "..%" PRIu64
			 " were written before the collector answered, under numbers it has "
			 "already committed; they are sent again as new batches",
			 lo, hi);
		uint64_t after = lo - 1;
		spool_rec_t r;
		while (after < hi && spool_read_after(sp, after, &r) == 1) {
			after = r.seq;
			if (r.seq <= hi)
				(void)spool_append(sp, r.data, r.len, r.n_events, r.first_ns,
						   r.last_ns);
			free(r.data);
		}
	}
	spool_ack(sp, committed);
}

void spool_sync(spool_t *sp)
{
	if (sp->dirty && sp->active_fd >= 0) {
		if (fdatasync(sp->active_fd) != 0)
			log_warn("spool: fdatasync: %s", strerror(errno));
		sp->dirty = false;
	}
	if (sp->meta_dirty || sp->meta_unsynced)
		write_meta(sp, true);
}

bool spool_take_drops(spool_t *sp, spool_drops_t *out)
{
	if (!sp->pending.batches)
		return false;
	*out = sp->pending;
	memset(&sp->pending, 0, sizeof(sp->pending));
	sp->meta_dirty = true;
	return true;
}

void spool_restore_drops(spool_t *sp, const spool_drops_t *d)
{
	if (!d->batches)
		return;
	if (!sp->pending.batches || d->first_ns < sp->pending.first_ns)
		sp->pending.first_ns = d->first_ns;
	if (!sp->pending.batches || d->last_ns > sp->pending.last_ns)
		sp->pending.last_ns = d->last_ns;
	sp->pending.batches += d->batches;
	sp->pending.events += d->events;
	sp->meta_dirty = true;
}

void spool_get_stats(const spool_t *sp, spool_stats_t *out)
{
	memset(out, 0, sizeof(*out));
	out->bytes = sp->bytes;
	out->capacity = sp->max_bytes;
	out->last_seq = sp->last_seq;
	out->acked_seq = sp->acked_seq;
	out->segments = sp->n_segs;
	out->torn_records = sp->torn;
	out->write_errors = sp->write_errors;
	out->dropped_total = sp->total;
}

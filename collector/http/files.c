// SPDX-License-Identifier: Apache-2.0
/*
 * The status page's files (see http_int.h): read once from web_root (two
 * levels of subdirectories, regular files only, no symbolic links) and
 * served from memory to the authenticated. A path not in the table is a
 * 404, so there is no traversal.
 */
#include "http/http_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "log.h"

#define WEB_MAX_FILE (4 * 1024 * 1024)

static const char *ctype_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return "text/plain; charset=utf-8";
	if (!strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (!strcmp(dot, ".js"))
		return "text/javascript; charset=utf-8";
	if (!strcmp(dot, ".css"))
		return "text/css; charset=utf-8";
	if (!strcmp(dot, ".json"))
		return "application/json";
	if (!strcmp(dot, ".svg"))
		return "image/svg+xml";
	if (!strcmp(dot, ".png"))
		return "image/png";
	if (!strcmp(dot, ".ico"))
		return "image/x-icon";
	return "text/plain; charset=utf-8";
}

static int load_file(http_t *h, const char *fs_path, const char *url)
{
	if (h->n_files >= WEB_MAX_FILES)
		return -1;
	int fd = open(fs_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WEB_MAX_FILE) {
		close(fd);
		return -1;
	}
	web_file_t *f = &h->files[h->n_files];
	f->data = malloc((size_t)st.st_size + 1);
	f->path = strdup(url);
	size_t got = 0;
	while (f->data && got < (size_t)st.st_size) {
		ssize_t n = read(fd, f->data + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!f->data || !f->path || got != (size_t)st.st_size) {
		free(f->data);
		free(f->path);
		memset(f, 0, sizeof(*f));
		return -1;
	}
	f->data[got] = '\0';
	f->len = got;
	f->ctype = ctype_of(url);
	h->n_files++;
	return 0;
}

/* Load dir (and its subdirectories, two levels) under url prefix. */
static void load_dir(http_t *h, const char *dir, const char *url, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char fs[1024], u[512];
		snprintf(fs, sizeof(fs), "%s/%s", dir, e->d_name);
		snprintf(u, sizeof(u), "%s/%s", url, e->d_name);
		struct stat st;
		if (lstat(fs, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 2)
			load_dir(h, fs, u, depth + 1);
		else if (S_ISREG(st.st_mode) && load_file(h, fs, u) != 0)
			log_warn("[https] web file %s not served", fs);
	}
	closedir(d);
}

void files_load(http_t *h)
{
	const char *root = h->col->settings->web_root;
	if (!root[0])
		return;
	load_dir(h, root, "", 0);
	for (int i = 0; i < h->n_files; i++)
		if (strcmp(h->files[i].path, "/openapi.json") == 0)
			h->openapi = &h->files[i];
	if (!h->n_files)
		log_warn("[https] no web files in %s; the status page is not served", root);
}

static const web_file_t *find_file(http_t *h, const char *path)
{
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (int i = 0; i < h->n_files; i++)
		if (strcmp(h->files[i].path, path) == 0)
			return &h->files[i];
	return NULL;
}

void files_serve(hreq_t *r)
{
	const web_file_t *f =
		strcmp(r->path, "/openapi.json") == 0 ? NULL : find_file(r->h, r->path);
	if (!f) {
		hreq_error(r, 404, "not_found", NULL, "no such file");
		return;
	}
	reply_count(r->h, 200);
	http_conn_rearm(r->evcon);
	struct evhttp_request *rq = reply_release(r);
	reply_headers(rq, f->ctype, REPLY_FILE);
	struct evbuffer *b = evbuffer_new();
	if (b)
		evbuffer_add_reference(b, f->data, f->len, NULL, NULL);
	evhttp_send_reply(rq, 200, "OK", b);
	if (b)
		evbuffer_free(b);
	reply_finish(r);
}

const char *hreq_openapi(hreq_t *r, size_t *len)
{
	if (!r->h->openapi)
		return NULL;
	*len = r->h->openapi->len;
	return r->h->openapi->data;
}

void files_free(http_t *h)
{
	for (int i = 0; i < h->n_files; i++) {
		free(h->files[i].data);
		free(h->files[i].path);
	}
}

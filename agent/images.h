// SPDX-License-Identifier: Apache-2.0
/*
 * The package inventories of the node's images, as the collector gets
 * them: for each distinct image among the running containers, read once
 * from a container's root (imageinv.h, on its worker thread) and sent once
 * as an IMAGE_INVENTORY event, unless the collector already has it.
 *
 * Image ids. A container whose image digest is known (the Docker API's
 * image id, "sha256:HEX", the key the collector stores containers' images
 * under) is of that image: the read is keyed by the digest, so the
 * containers of one image are read once. A container without a digest
 * (runc alone, containerd without an API) is named by what its root holds,
 * "rootfs:sha256:HEX" of the os-release and package database bytes read
 * (imageinv_result_t.content_id). That is known only after a read, so such
 * a container is read once itself (key "container:ID": neither a root
 * directory's device and inode, which later containers reuse, nor an image
 * name, which a tag moves, says which image it is), and an inventory is
 * sent once per content: a second container of the same content is read
 * and not sent. Container id -> content id is kept in SPOOL_DIR/images, so
 * that after a restart the Hello names the image without a read.
 *
 * Once per image. Hello lists the image ids of the running containers (at
 * most IMAGES_HELLO_MAX); Welcome names those the collector stores; the
 * others are read and sent while connected. An inventory put in the spool
 * is delivered exactly once, so it is not sent again on a reconnect; if
 * the collector has committed its batch and still lacks the image (a full
 * spool dropped the batch, or the collector refused the event), the next
 * connection sends it again. An image is submitted at most once per
 * connection; a read whose container exited is tried again with another
 * container at the next scan.
 */
#ifndef VIGIL_AGENT_IMAGES_H
#define VIGIL_AGENT_IMAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "inventory.h"
#include "settings.h"
#include "vigil/v1/events.pb-c.h"

#define IMAGES_HELLO_MAX 4096 /* image ids in a Hello */

typedef struct images images_t;

typedef struct {
	/* Put ev (borrowed) into the event path in a batch of its own; return
	 * the batch's spool sequence number, 0 if it was not stored. */
	uint64_t (*emit)(void *arg, const Vigil__V1__Event *ev);
	/* An image could not be read (or only in part): a status is due. */
	void (*failed)(void *arg);
} images_cbs_t;

/* Start the reader (s->image_inventory on) on base: its results come on
 * the loop through an event on imageinv_fd. max_event_bytes bounds one
 * event (the batch limit): packages over it are cut. s and cbs are
 * borrowed. Return NULL with err set on failure. */
images_t *images_new(struct event_base *base, const settings_t *s, size_t max_event_bytes,
		     const images_cbs_t *cbs, void *arg, char *err, size_t errlen);
/* Stop the reader (waiting for a read in progress) and free im. Accepts
 * NULL. */
void images_free(images_t *im);

/* Fill *ids with the image ids of inv's running containers known so far
 * (digests, and content addresses of containers read before), at most
 * IMAGES_HELLO_MAX, for the Hello. The strings are borrowed until the next
 * call to any images_ function. Return how many. */
size_t images_hello_ids(images_t *im, const inventory_t *inv, char ***ids);

/* Welcome arrived: of the ids of the last Hello, the collector stores
 * known (n of them) and has committed every batch up to committed. A new
 * connection starts: each image may be submitted once more. */
void images_welcome(images_t *im, uint64_t committed, char *const *known, size_t n);

/* Connected: submit a read of each image of inv's running containers that
 * the collector lacks and that is not read or sent yet; forget containers
 * that are gone. Never blocks. */
void images_sync(images_t *im, const inventory_t *inv);

/* The reader's state for the agent status: ok unless the reader could not
 * start; text says how many images were read, not read or read in part,
 * how many were sent, and the last failure with its reason. */
void images_status(const images_t *im, char *text, size_t n);

#endif

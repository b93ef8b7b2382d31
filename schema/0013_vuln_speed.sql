-- SPDX-License-Identifier: Apache-2.0
-- Vulnerable images, faster answers and containers without an image digest.
--
-- Aliases. "Who is exposed to CVE-X" looked CVE-X up through the GIN index
-- on advisories.aliases, whose row estimate (a fixed fraction of the
-- table, hundreds of advisories) led the planner to read every match and
-- every running container. advisory_aliases holds one row per (alias,
-- advisory): a btree lookup with an estimate of about one row. The import
-- (collector/vuln/advdb.c) writes the aliases of what it adds or changes
-- in its own transaction.
--
-- Containers without a digest. On a node without an image store (runc
-- alone) a container has no image digest; the agent names its image by
-- what its root holds, "rootfs:sha256:HEX", in ImageInventory.image_id with
-- ImageInventory.container_id set. vuln_container_images keeps that
-- container -> image link from every inventory that names a container, so
-- the exposure answers find the container through it when
-- containers.image_digest is empty. The agent sends an inventory once per
-- image: a second container of the same content is linked only if an
-- inventory names it.

CREATE TABLE advisory_aliases (
    alias        text NOT NULL,
    advisory_id  text NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (alias, advisory_id)
);
CREATE INDEX advisory_aliases_advisory ON advisory_aliases (advisory_id);
INSERT INTO advisory_aliases (alias, advisory_id)
SELECT DISTINCT x.alias, a.id FROM advisories a CROSS JOIN LATERAL unnest(a.aliases) AS x(alias)
ON CONFLICT DO NOTHING;
ANALYZE advisory_aliases;

CREATE TABLE vuln_container_images (
    agent_id      integer NOT NULL,
    container_id  text NOT NULL,
    image_id      text NOT NULL,
    seen_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, container_id)
);
CREATE INDEX vuln_container_images_image ON vuln_container_images (image_id);
INSERT INTO vuln_container_images (agent_id, container_id, image_id)
SELECT agent_id, container_id, image_id FROM images
WHERE agent_id IS NOT NULL AND container_id IS NOT NULL
ON CONFLICT DO NOTHING;

-- vigil_apply_images of 0010_images.sql, which also records the
-- container -> image link of each inventory that names a container (the
-- last one in the group wins).
CREATE OR REPLACE FUNCTION vigil_apply_images(plan jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    fresh integer;
BEGIN
    WITH src AS (
        SELECT DISTINCT ON (x->>'image_id') x
        FROM jsonb_array_elements(plan) WITH ORDINALITY AS t(x, ord)
        ORDER BY x->>'image_id', ord
    ), ins AS (
        INSERT INTO images (image_id, names, os_id, os_version_id, os_codename, os_pretty,
            distro, release, format, status, reason, packages, packages_cut, read_ms,
            agent_id, container_id)
        SELECT x->>'image_id',
               CASE WHEN coalesce(x->>'image', '') = '' THEN '{}' ELSE ARRAY[x->>'image'] END,
               x->>'os_id', x->>'os_version_id', x->>'os_codename', x->>'os_pretty',
               x->>'os_id', vigil_image_release(x->>'os_id', x->>'os_version_id'),
               x->>'format', x->>'status', x->>'reason', jsonb_array_length(x->'pk'),
               (x->>'packages_cut')::integer, (x->>'read_ms')::integer, (x->>'a')::integer,
               nullif(x->>'container_id', '')
        FROM src
        ON CONFLICT (image_id) DO NOTHING
        RETURNING image_id
    ), pk AS (
        INSERT INTO image_packages (image_id, name, version, arch, source_name, source_version)
        SELECT ins.image_id, p->>0, p->>1, p->>2, p->>3, p->>4
        FROM ins JOIN src ON src.x->>'image_id' = ins.image_id
        CROSS JOIN LATERAL jsonb_array_elements(src.x->'pk') AS p
    )
    SELECT count(*) INTO fresh FROM ins;

    UPDATE images i SET names = i.names || n.image
    FROM (SELECT DISTINCT x->>'image_id' AS id, x->>'image' AS image
          FROM jsonb_array_elements(plan) AS x) n
    WHERE i.image_id = n.id AND coalesce(n.image, '') <> '' AND NOT (n.image = ANY (i.names))
      AND cardinality(i.names) < 16;

    INSERT INTO vuln_container_images AS l (agent_id, container_id, image_id)
    SELECT DISTINCT ON (a, cid) a, cid, id
    FROM (SELECT (x->>'a')::integer AS a, x->>'container_id' AS cid, x->>'image_id' AS id, ord
          FROM jsonb_array_elements(plan) WITH ORDINALITY AS t(x, ord)) s
    WHERE a IS NOT NULL AND coalesce(cid, '') <> ''
    ORDER BY a, cid, ord DESC
    ON CONFLICT (agent_id, container_id) DO UPDATE SET image_id = EXCLUDED.image_id,
        seen_at = now()
    WHERE l.image_id <> EXCLUDED.image_id;

    IF fresh > 0 THEN
        PERFORM pg_notify('vigil_vuln', 'images');
    END IF;
END $$;

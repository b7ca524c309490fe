-- Who owns a label: only they (and admins) move its baseline, which every
-- later run of the label, and a CI gate, is judged against. A label is
-- owned by whoever first ran it, unless an admin names its owners
-- (`mite-perf label owners LABEL --add NAME`).
CREATE TABLE label_owners (
    label TEXT NOT NULL,
    owner TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (label, owner)
);
-- The labels run so far: each owned by the launcher of its first run.
INSERT INTO label_owners (label, owner, added_at)
SELECT r.label, COALESCE(r.params::json->>'launched_by', ''), r.created_at
FROM runs r
WHERE r.label <> ''
  AND r.id = (SELECT MIN(id) FROM runs f WHERE f.label = r.label)
  AND COALESCE(r.params::json->>'launched_by', '') <> '';

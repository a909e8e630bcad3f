-- Object churn: creates and deletes per resource and namespace, and how many names were
-- re-created (a new uid under a name that had one before).
--
-- creates    objects whose creation was observed (audit create or the watch's first revision)
-- deletes    objects seen to go away (the watch's DELETED, or an audited delete's final revision)
-- recreated_names names in the group that belonged to more than one uid
WITH lifecycle AS (
    SELECT cluster, api_group, resource, namespace, name, uid,
           bool_or(verb = 'create') AS created,
           bool_or(verb = 'delete') AS deleted
    FROM spans
    WHERE kind = 'change' AND uid IS NOT NULL
    GROUP BY ALL
),
names AS (
    SELECT cluster, api_group, resource, namespace, name, count(DISTINCT uid) AS uids
    FROM lifecycle
    GROUP BY ALL
)
SELECT l.cluster, coalesce(l.api_group, '') AS api_group, l.resource, l.namespace,
       count(*) FILTER (WHERE l.created) AS creates,
       count(*) FILTER (WHERE l.deleted) AS deletes,
       (SELECT count(*) FROM names n
         WHERE n.cluster = l.cluster AND n.resource = l.resource AND n.uids > 1
           AND n.api_group IS NOT DISTINCT FROM l.api_group AND n.namespace IS NOT DISTINCT FROM l.namespace) AS recreated_names
FROM lifecycle l
GROUP BY l.cluster, l.api_group, l.resource, l.namespace
HAVING creates > 0 OR deletes > 0
ORDER BY l.cluster, creates + deletes DESC, l.resource, l.namespace

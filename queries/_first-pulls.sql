-- Fragment: each rollout's first image pull (CTEs rs_owners, pod_facts, pods, pulls, firsts), after the
-- rollouts CTE (included with `-- @include first-pulls`).
-- The owner of each ReplicaSet, taken from its object spans (any window).
rs_owners AS (
    SELECT DISTINCT cluster, uid, parent_uid
    FROM spans
    WHERE kind = 'object' AND resource = 'replicasets' AND uid IS NOT NULL AND parent_uid IS NOT NULL
),
-- The pods' creates and image pulls, in one pass over the pods' rows: two filters of their own
-- would decode the pods' uid, parent and time columns twice (20 % more CPU for the query over
-- 10 M spans).
pod_facts AS MATERIALIZED (
    SELECT cluster, uid, parent_uid, kind, start_time
    FROM spans
    WHERE resource = 'pods' AND uid IS NOT NULL
      AND ((kind = 'change' AND verb = 'create' AND parent_uid IS NOT NULL) OR (kind = 'event' AND reason = 'Pulling'))
),
-- Pods with their workload (Deployment through ReplicaSet; StatefulSet, DaemonSet directly) and
-- creation, from their create: every row of an object carries the object's parent, so the pods'
-- object spans (one per pod per window) need not be read.
pods AS (
    SELECT c.cluster, c.uid, coalesce(rs.parent_uid, c.parent_uid) AS workload_uid,
           min(c.start_time) AS created_at
    FROM pod_facts c
    LEFT JOIN rs_owners rs ON rs.cluster = c.cluster AND rs.uid = c.parent_uid
    WHERE c.kind = 'change'
    GROUP BY ALL
),
pulls AS (
    SELECT cluster, uid, min(start_time) AS pulled_at
    FROM pod_facts
    WHERE kind = 'event'
    GROUP BY ALL
),
firsts AS (
    SELECT r.cluster, r.namespace, r.kind, r.name, r.uid, r.upgrade_at, min(pl.pulled_at) AS first_pull_at
    FROM rollouts r
    LEFT JOIN pods p ON p.cluster = r.cluster AND p.workload_uid = r.uid
         AND p.created_at >= date_trunc('second', r.upgrade_at)
         AND p.created_at < coalesce(date_trunc('second', r.next_upgrade_at), 'infinity'::TIMESTAMP)
    LEFT JOIN pulls pl ON pl.cluster = p.cluster AND pl.uid = p.uid
    GROUP BY ALL
)

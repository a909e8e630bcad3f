-- Fragment: each rollout's first image pull (CTEs rs_owners, pods, pulls, firsts), after the
-- rollouts CTE (included with `-- @include first-pulls`).
-- The owner of each ReplicaSet, taken from its object spans (any window).
rs_owners AS (
    SELECT DISTINCT cluster, uid, parent_uid
    FROM spans
    WHERE kind = 'object' AND resource = 'replicasets' AND uid IS NOT NULL AND parent_uid IS NOT NULL
),
-- Pods with their workload (Deployment through ReplicaSet; StatefulSet, DaemonSet directly) and
-- creation, from their create: every row of an object carries the object's parent, so the pods'
-- object spans (one per pod per window) need not be read.
pods AS (
    SELECT c.cluster, c.uid, coalesce(rs.parent_uid, c.parent_uid) AS workload_uid,
           min(c.start_time) AS created_at
    FROM spans c
    LEFT JOIN rs_owners rs ON rs.cluster = c.cluster AND rs.uid = c.parent_uid
    WHERE c.kind = 'change' AND c.verb = 'create' AND c.resource = 'pods'
      AND c.uid IS NOT NULL AND c.parent_uid IS NOT NULL
    GROUP BY ALL
),
pulls AS (
    SELECT cluster, uid, min(start_time) AS pulled_at
    FROM spans
    WHERE kind = 'event' AND resource = 'pods' AND reason = 'Pulling'
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

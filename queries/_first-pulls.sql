-- Fragment: each rollout's first image pull (CTEs owners, pods, pulls, firsts), after the
-- rollouts CTE (included with `-- @include first-pulls`).
-- The owner of each object, taken from its object spans (any window).
owners AS (
    SELECT DISTINCT cluster, uid, resource, parent_uid
    FROM spans
    WHERE kind = 'object' AND uid IS NOT NULL AND parent_uid IS NOT NULL
),
-- Pods with their workload (Deployment through ReplicaSet; StatefulSet, DaemonSet directly) and creation.
pods AS (
    SELECT p.cluster, p.uid, coalesce(rs.parent_uid, p.parent_uid) AS workload_uid,
           min(c.start_time) AS created_at
    FROM owners p
    LEFT JOIN owners rs ON rs.cluster = p.cluster AND rs.uid = p.parent_uid AND rs.resource = 'replicasets'
    JOIN spans c ON c.cluster = p.cluster AND c.uid = p.uid AND c.kind = 'change' AND c.verb = 'create'
    WHERE p.resource = 'pods'
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

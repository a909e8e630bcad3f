-- Fragment: each rollout's first image pull (CTEs pod_rows, rs_owners, pods, pulls, firsts),
-- after the rollouts CTE (included with `-- @include first-pulls`).
-- The pods' rows this needs, in one pass over the pods (a column is decoded once, not once per
-- use): their object spans (owner), creations and Pulling Events.
pod_rows AS MATERIALIZED (
    SELECT cluster, uid, kind, parent_uid, start_time
    FROM spans
    WHERE resource = 'pods' AND uid IS NOT NULL
      AND (kind = 'object' AND parent_uid IS NOT NULL
           OR kind = 'change' AND verb = 'create'
           OR kind = 'event' AND reason = 'Pulling')
),
-- The owner of each ReplicaSet, taken from its object spans (any window).
rs_owners AS (
    SELECT DISTINCT cluster, uid, parent_uid
    FROM spans
    WHERE kind = 'object' AND resource = 'replicasets' AND uid IS NOT NULL AND parent_uid IS NOT NULL
),
-- Pods with their workload (Deployment through ReplicaSet; StatefulSet, DaemonSet directly) and creation.
pods AS (
    SELECT p.cluster, p.uid, coalesce(rs.parent_uid, p.parent_uid) AS workload_uid,
           min(c.start_time) AS created_at
    FROM (SELECT DISTINCT cluster, uid, parent_uid FROM pod_rows WHERE kind = 'object') p
    LEFT JOIN rs_owners rs ON rs.cluster = p.cluster AND rs.uid = p.parent_uid
    JOIN pod_rows c ON c.cluster = p.cluster AND c.uid = p.uid AND c.kind = 'change'
    GROUP BY ALL
),
pulls AS (
    SELECT cluster, uid, min(start_time) AS pulled_at
    FROM pod_rows
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

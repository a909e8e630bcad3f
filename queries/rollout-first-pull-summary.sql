-- Rollout to first image pull, summarised: count, p50/p90/p99 and max latency per cluster and per namespace.
--
-- Same rollouts and latencies as `rollout-first-pull` (its CTEs, copied verbatim: a query file
-- cannot include another), one row per cluster (scope = 'cluster', namespace empty) and per
-- namespace (scope = 'namespace').
--
-- rollouts        rollouts in the group
-- pulled          rollouts with a first pull (the others have no latency yet)
-- p50/p90/p99_seconds quantiles of latency_seconds over the pulled rollouts, interpolated
--                 linearly between the closest ranks (quantile_cont); NULL when none pulled
-- max_seconds     the largest latency
WITH rollouts AS (
    SELECT cluster, namespace, object_kind AS kind, name, uid, start_time AS upgrade_at,
           lead(start_time) OVER (PARTITION BY cluster, uid ORDER BY start_time) AS next_upgrade_at
    FROM spans
    WHERE kind = 'change'
      AND resource IN ('deployments', 'statefulsets', 'daemonsets') AND coalesce(api_group, '') = 'apps'
      AND verb NOT IN ('create', 'observe', 'delete', 'delete-requested')
      AND len(list_filter(changes, c -> starts_with(c.path, 'spec.template'))) > 0
),
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
         AND (r.next_upgrade_at IS NULL OR p.created_at < date_trunc('second', r.next_upgrade_at))
    LEFT JOIN pulls pl ON pl.cluster = p.cluster AND pl.uid = p.uid
    GROUP BY ALL
),
latencies AS (
    SELECT cluster, namespace, date_diff('microsecond', upgrade_at, first_pull_at) / 1e6 AS latency
    FROM firsts
)
SELECT CASE WHEN grouping(namespace) = 1 THEN 'cluster' ELSE 'namespace' END AS scope,
       cluster, namespace,
       count(*) AS rollouts,
       count(latency) AS pulled,
       round(quantile_cont(latency, 0.5), 3) AS p50_seconds,
       round(quantile_cont(latency, 0.9), 3) AS p90_seconds,
       round(quantile_cont(latency, 0.99), 3) AS p99_seconds,
       round(max(latency), 3) AS max_seconds
FROM latencies
GROUP BY GROUPING SETS ((cluster), (cluster, namespace))
ORDER BY cluster, grouping(namespace) DESC, namespace

-- Rollout to first image pull, summarised: count, p50/p90/p99 and max latency per cluster and per namespace.
--
-- Same rollouts and latencies as `rollout-first-pull` (the same included CTEs), one row per cluster (scope = 'cluster', namespace empty) and per
-- namespace (scope = 'namespace').
--
-- rollouts        rollouts in the group
-- pulled          rollouts with a first pull (the others have no latency yet)
-- p50/p90/p99_seconds quantiles of latency_seconds over the pulled rollouts, interpolated
--                 linearly between the closest ranks (quantile_cont); NULL when none pulled
-- max_seconds     the largest latency
WITH
-- @include rollouts
,
-- @include first-pulls
,
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

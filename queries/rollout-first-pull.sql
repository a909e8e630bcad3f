-- From a workload rollout to the first image pull of its new revision, one row per rollout.
--
-- A rollout is a successful write, other than the create, that changes the pod template
-- (spec.template.*) of a Deployment, StatefulSet or DaemonSet: image upgrades, env changes,
-- restarts and rollbacks. A scale changes spec.replicas only and is not a rollout.
--
-- upgrade_at     when the apiserver received the write (audit requestReceivedTimestamp); without
--                audit, the revision's managedFields time (second precision).
-- first_pull_at  the earliest kubelet `Pulling` Event on a pod of the new revision: a pod owned by
--                the workload (through its ReplicaSet for Deployments, directly for StatefulSets
--                and DaemonSets) and created at or after
--                the rollout and before the workload's next rollout. Events are timed by their
--                audited creation where the audit log has it, else eventTime, else firstTimestamp.
-- latency_seconds first_pull_at - upgrade_at; NULL when no pull is seen yet.
--
-- Times compare at second precision where one side only has seconds (watch-only input).
-- The rollouts CTE is the same text in rollout-first-pull-summary.sql and rollout-duration.sql.
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
)
SELECT cluster, namespace, kind, name,
       strftime(upgrade_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS upgrade_at,
       strftime(first_pull_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS first_pull_at,
       round(date_diff('microsecond', upgrade_at, first_pull_at) / 1e6, 3) AS latency_seconds
FROM firsts
ORDER BY cluster, firsts.upgrade_at, namespace, name

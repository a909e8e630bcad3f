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
WITH
-- @include rollouts
,
-- @include first-pulls
SELECT cluster, namespace, kind, name,
       strftime(upgrade_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS upgrade_at,
       strftime(first_pull_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS first_pull_at,
       round(date_diff('microsecond', upgrade_at, first_pull_at) / 1e6, 3) AS latency_seconds
FROM firsts
ORDER BY cluster, firsts.upgrade_at, namespace, name

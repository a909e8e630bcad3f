-- Rollout duration: from a workload rollout to its new revision fully available with the old replicas gone, one row per rollout.
--
-- A rollout is the same as in `rollout-first-pull`: a successful write, other than the create,
-- that changes the pod template (spec.template.*) of a Deployment, StatefulSet or DaemonSet.
--
-- upgrade_at    when the apiserver received the write (audit), else the revision's managedFields time.
-- completed_at  the first later revision of the workload (before its next rollout) whose status,
--               as written by its controller, says the rollout is done:
--                 all      status.observedGeneration >= the generation the rollout write produced
--                 Deployment   updatedReplicas = replicas = readyReplicas = availableReplicas,
--                              no unavailableReplicas and no terminatingReplicas (old pods gone)
--                 StatefulSet  currentRevision = updateRevision and
--                              updatedReplicas = replicas = readyReplicas = availableReplicas
--                 DaemonSet    updatedNumberScheduled = currentNumberScheduled = numberReady =
--                              numberAvailable = desiredNumberScheduled, no numberUnavailable
--               Timed like upgrade_at (the audited status write, µs; else managedFields, seconds).
--               NULL while not done, or when the next rollout came first (superseded).
-- duration_seconds completed_at - upgrade_at.
--
-- The status is rebuilt from the `changes` of the workload's change rows (each status field keeps
-- its last value; a field that was removed counts as 0). A field never seen to change since the
-- object was first seen counts as 0: for an object created before collection started, a rollout
-- can only be seen to complete once the fields above have each changed at least once.
WITH
-- @include rollouts
,
-- Every revision of the workloads, with the fields it set: path → JSON-decoded new value ('0' when removed).
revisions AS (
    SELECT cluster, uid, start_time AS rev_at, TRY_CAST(resource_version AS UBIGINT) AS rv,
           map_from_entries(list_transform(
               list_filter(changes, c -> c.path = 'metadata.generation' OR starts_with(c.path, 'status.')),
               c -> {'k': c.path, 'v': coalesce(json_extract_string(c.new, '$'), '0')})) AS m
    FROM spans
    WHERE kind = 'change' AND uid IS NOT NULL
      AND resource IN ('deployments', 'statefulsets', 'daemonsets') AND coalesce(api_group, '') = 'apps'
),
-- The status after each revision: each field's last value so far.
states AS (
    SELECT cluster, uid, rev_at, rv,
           coalesce(last_value(TRY_CAST(m['metadata.generation'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS generation,
           coalesce(last_value(TRY_CAST(m['status.observedGeneration'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS observed,
           coalesce(last_value(TRY_CAST(m['status.replicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS replicas,
           coalesce(last_value(TRY_CAST(m['status.updatedReplicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS updated,
           coalesce(last_value(TRY_CAST(m['status.readyReplicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ready,
           coalesce(last_value(TRY_CAST(m['status.availableReplicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS available,
           coalesce(last_value(TRY_CAST(m['status.unavailableReplicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS unavailable,
           coalesce(last_value(TRY_CAST(m['status.terminatingReplicas'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS terminating,
           last_value(m['status.currentRevision'] IGNORE NULLS) OVER w AS current_revision,
           last_value(m['status.updateRevision'] IGNORE NULLS) OVER w AS update_revision,
           coalesce(last_value(TRY_CAST(m['status.desiredNumberScheduled'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_desired,
           coalesce(last_value(TRY_CAST(m['status.currentNumberScheduled'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_current,
           coalesce(last_value(TRY_CAST(m['status.updatedNumberScheduled'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_updated,
           coalesce(last_value(TRY_CAST(m['status.numberReady'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_ready,
           coalesce(last_value(TRY_CAST(m['status.numberAvailable'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_available,
           coalesce(last_value(TRY_CAST(m['status.numberUnavailable'] AS BIGINT) IGNORE NULLS) OVER w, 0) AS ds_unavailable
    FROM revisions
    WINDOW w AS (PARTITION BY cluster, uid ORDER BY rev_at, rv ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
-- The generation each rollout write produced.
generations AS (
    SELECT r.cluster, r.uid, r.upgrade_at, max(s.generation) AS generation
    FROM rollouts r
    JOIN states s ON s.cluster = r.cluster AND s.uid = r.uid AND s.rev_at = r.upgrade_at
    GROUP BY ALL
),
done AS (
    SELECT r.cluster, r.uid, r.upgrade_at, min(s.rev_at) AS completed_at
    FROM rollouts r
    JOIN generations g ON g.cluster = r.cluster AND g.uid = r.uid AND g.upgrade_at = r.upgrade_at
    JOIN states s ON s.cluster = r.cluster AND s.uid = r.uid AND s.rev_at > r.upgrade_at
         AND s.rev_at < coalesce(r.next_upgrade_at, 'infinity'::TIMESTAMP)
         AND s.observed >= g.generation
    WHERE CASE r.kind
            WHEN 'Deployment' THEN s.updated = s.replicas AND s.ready = s.replicas AND s.available = s.replicas
                               AND s.unavailable = 0 AND s.terminating = 0
            WHEN 'StatefulSet' THEN s.current_revision = s.update_revision AND s.updated = s.replicas
                               AND s.ready = s.replicas AND s.available = s.replicas
            WHEN 'DaemonSet' THEN s.ds_updated = s.ds_desired AND s.ds_current = s.ds_desired
                               AND s.ds_ready = s.ds_desired AND s.ds_available = s.ds_desired AND s.ds_unavailable = 0
          END
    GROUP BY ALL
)
SELECT r.cluster, r.namespace, r.kind, r.name,
       strftime(r.upgrade_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS upgrade_at,
       strftime(d.completed_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS completed_at,
       round(date_diff('microsecond', r.upgrade_at, d.completed_at) / 1e6, 3) AS duration_seconds
FROM rollouts r
LEFT JOIN done d ON d.cluster = r.cluster AND d.uid = r.uid AND d.upgrade_at = r.upgrade_at
ORDER BY r.cluster, r.upgrade_at, r.namespace, r.name

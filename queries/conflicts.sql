-- 409 Conflicts: failed writes that held a stale resourceVersion, each with the write that won.
--
-- A loser is an update or patch answered 409 Conflict; base_resource_version is the
-- resourceVersion it was based on (its request body's metadata.resourceVersion, or the audit
-- record's objectRef.resourceVersion). The winner is the write that moved the same object on from
-- that resourceVersion: the observed revision whose previous revision is the base, with the user
-- of the audited write that produced it (empty when no audit record could be linked to it).
-- Several losers holding the same base are grouped under the one winner.
WITH losers AS (
    SELECT cluster, api_group, resource, namespace, name, user AS loser_user, start_time AS loser_at,
           prev_resource_version AS base
    FROM spans
    WHERE kind = 'audit' AND status_code = 409 AND verb IN ('update', 'patch')
),
winners AS (
    SELECT cluster, api_group, resource, namespace, name, user AS winner_user, start_time AS winner_at,
           prev_resource_version AS base
    FROM spans
    WHERE kind = 'change' AND prev_resource_version IS NOT NULL
)
SELECT l.cluster, l.namespace, l.resource, l.name, l.loser_user,
       strftime(l.loser_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS loser_at,
       w.winner_user,
       strftime(w.winner_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS winner_at,
       l.base AS base_resource_version
FROM losers l
LEFT JOIN winners w
       ON w.cluster = l.cluster AND w.resource = l.resource AND w.name = l.name AND w.base = l.base
      AND w.api_group IS NOT DISTINCT FROM l.api_group AND w.namespace IS NOT DISTINCT FROM l.namespace
ORDER BY l.cluster, l.loser_at

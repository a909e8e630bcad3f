-- Fragment: the rollouts CTE, shared by the rollout queries (included with `-- @include rollouts`).
-- A rollout is a successful write, other than the create, that changes the pod template
-- (spec.template.*) of a Deployment, StatefulSet or DaemonSet; next_upgrade_at is the same
-- workload's next rollout.
rollouts AS (
    SELECT cluster, namespace, object_kind AS kind, name, uid, start_time AS upgrade_at,
           lead(start_time) OVER (PARTITION BY cluster, uid ORDER BY start_time) AS next_upgrade_at
    FROM spans
    WHERE kind = 'change'
      AND resource IN ('deployments', 'statefulsets', 'daemonsets') AND api_group = 'apps'
      AND verb NOT IN ('create', 'observe', 'delete', 'delete-requested')
      AND list_bool_or(list_transform(changes, c -> starts_with(c.path, 'spec.template')))
)

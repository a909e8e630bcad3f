-- Controller reconcile latency: from a change of an owner's desired state to the controller's first write on one of its children, one row per change.
--
-- trigger     a successful write to a Deployment, ReplicaSet, StatefulSet or DaemonSet (apps) that
--             creates it ('create'), changes its pod template ('template', spec.template.*) or
--             else its spec.replicas ('replicas'); by a user or by a controller (the deployment
--             controller's ReplicaSet creates and scales are triggers for the ReplicaSet controller).
-- reacted_at  the first write after the trigger, and before the owner's next trigger, on an object
--             the owner owns (its ReplicaSets for a Deployment, its pods otherwise): a create, a
--             delete, or an update/patch that changes more than status. Writes that only set
--             status (kubelet, status controllers), bindings and ControllerRevisions do not count.
--             NULL when there was none before the next trigger.
-- controller  the user of that write (e.g. system:serviceaccount:kube-system:replicaset-controller),
--             else its managedFields manager (watch-only input).
-- action      its verb: create, update, patch, delete-requested (graceful delete) or delete.
-- latency_seconds reacted_at - trigger_at. Times are the audited requestReceivedTimestamps (µs),
--             else managedFields/creation/deletion times (seconds).
WITH owners AS (
    SELECT DISTINCT cluster, uid, parent_uid
    FROM spans
    WHERE kind = 'object' AND uid IS NOT NULL AND parent_uid IS NOT NULL
),
triggers AS (
    SELECT cluster, namespace, object_kind AS owner_kind, name AS owner, uid, start_time AS trigger_at, user AS trigger_user,
           CASE WHEN verb = 'create' THEN 'create'
                WHEN len(list_filter(changes, c -> starts_with(c.path, 'spec.template'))) > 0 THEN 'template'
                ELSE 'replicas' END AS trigger,
           lead(start_time) OVER (PARTITION BY cluster, uid ORDER BY start_time, TRY_CAST(resource_version AS UBIGINT)) AS next_trigger_at
    FROM spans
    WHERE kind = 'change' AND uid IS NOT NULL
      AND resource IN ('deployments', 'replicasets', 'statefulsets', 'daemonsets') AND coalesce(api_group, '') = 'apps'
      AND (verb = 'create'
           OR len(list_filter(changes, c -> starts_with(c.path, 'spec.template') OR c.path = 'spec.replicas')) > 0)
      AND verb NOT IN ('observe', 'delete', 'delete-requested')
),
writes AS (
    SELECT w.cluster, o.parent_uid AS owner_uid, w.object_kind AS child_kind, w.name AS child, w.verb AS action,
           coalesce(w.user, w.field_manager) AS controller, w.start_time AS written_at
    FROM spans w
    JOIN owners o ON o.cluster = w.cluster AND o.uid = w.uid
    WHERE w.kind = 'change'
      AND ((w.resource = 'replicasets' AND w.api_group = 'apps') OR (w.resource = 'pods' AND w.api_group IS NULL))
      AND (w.verb IN ('create', 'delete-requested', 'delete')
           OR (w.verb IN ('update', 'patch')
               AND len(list_filter(w.changes, c -> NOT starts_with(c.path, 'status'))) > 0))
),
firsts AS (
    SELECT t.cluster, t.namespace, t.owner_kind, t.owner, t.uid, t.trigger, t.trigger_user, t.trigger_at,
           arg_min(w.controller, w.written_at) AS controller,
           arg_min(w.child_kind, w.written_at) AS child_kind,
           arg_min(w.child, w.written_at) AS child,
           arg_min(w.action, w.written_at) AS action,
           min(w.written_at) AS reacted_at
    FROM triggers t
    LEFT JOIN writes w ON w.cluster = t.cluster AND w.owner_uid = t.uid AND w.written_at > t.trigger_at
         AND (t.next_trigger_at IS NULL OR w.written_at < t.next_trigger_at)
    GROUP BY ALL
)
SELECT cluster, controller, namespace, owner_kind, owner, trigger, trigger_user,
       strftime(trigger_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS trigger_at,
       child_kind, child, action,
       strftime(reacted_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS reacted_at,
       round(date_diff('microsecond', trigger_at, reacted_at) / 1e6, 3) AS latency_seconds
FROM firsts
ORDER BY cluster, firsts.trigger_at, namespace, owner

-- Pod scheduling latency: from a pod's creation to its binding to a node, one row per pod.
--
-- created_at  when the apiserver received the pod's create (audit), else the watch's
--             creationTimestamp (seconds).
-- bound_at    when the apiserver received the scheduler's pods/binding (audit), else the
--             scheduler's `Scheduled` Event.
-- scheduler   the user that bound it (system:kube-scheduler for the default scheduler), else the
--             Event's reporter.
-- latency_seconds bound_at - created_at; NULL while the pod is not bound.
WITH created AS (
    SELECT cluster, namespace, name, uid, min(start_time) AS created_at
    FROM spans
    WHERE resource = 'pods' AND api_group IS NULL AND subresource IS NULL AND verb = 'create'
      AND ((kind = 'audit' AND status_code BETWEEN 200 AND 299) OR kind = 'change')
      AND uid IS NOT NULL
    GROUP BY ALL
),
bound AS (
    SELECT cluster, uid, arg_min(user, start_time) AS scheduler, min(start_time) AS bound_at
    FROM spans
    WHERE kind = 'audit' AND resource = 'pods' AND subresource = 'binding' AND verb = 'create'
      AND status_code BETWEEN 200 AND 299 AND uid IS NOT NULL
    GROUP BY ALL
),
scheduled AS (
    SELECT cluster, uid, arg_min(reporter, start_time) AS scheduler, min(start_time) AS bound_at
    FROM spans
    WHERE kind = 'event' AND resource = 'pods' AND reason = 'Scheduled'
    GROUP BY ALL
)
SELECT c.cluster, c.namespace, c.name AS pod, coalesce(b.scheduler, s.scheduler) AS scheduler,
       strftime(c.created_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at,
       strftime(coalesce(b.bound_at, s.bound_at), '%Y-%m-%dT%H:%M:%S.%fZ') AS bound_at,
       round(date_diff('microsecond', c.created_at, coalesce(b.bound_at, s.bound_at)) / 1e6, 3) AS latency_seconds
FROM created c
LEFT JOIN bound b ON b.cluster = c.cluster AND b.uid = c.uid
LEFT JOIN scheduled s ON s.cluster = c.cluster AND s.uid = c.uid
ORDER BY c.cluster, c.created_at, c.namespace, c.name

-- Pod startup latency: from a pod's binding to a node to its first container `Started` Event
-- (kubelet), one row per pod.
--
-- bound_at   when the apiserver received the pods/binding (audit), else the `Scheduled` Event.
-- started_at the earliest `Started` Event on the pod, timed by its audited creation where the
--            audit log has it, else eventTime, else firstTimestamp.
-- latency_seconds started_at - bound_at; NULL while no container has started.
WITH bound AS (
    SELECT cluster, uid, min(start_time) AS bound_at
    FROM spans
    WHERE ((kind = 'audit' AND resource = 'pods' AND subresource = 'binding' AND verb = 'create' AND status_code BETWEEN 200 AND 299)
        OR (kind = 'event' AND resource = 'pods' AND reason = 'Scheduled'))
      AND uid IS NOT NULL
    GROUP BY ALL
),
started AS (
    SELECT cluster, uid, any_value(namespace) AS namespace, any_value(name) AS name, min(start_time) AS started_at
    FROM spans
    WHERE kind = 'event' AND resource = 'pods' AND reason = 'Started' AND uid IS NOT NULL
    GROUP BY ALL
),
pods AS (
    SELECT DISTINCT cluster, uid, namespace, name FROM spans WHERE kind = 'object' AND resource = 'pods' AND uid IS NOT NULL
)
SELECT p.cluster, p.namespace, p.name AS pod,
       strftime(b.bound_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS bound_at,
       strftime(s.started_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS started_at,
       round(date_diff('microsecond', b.bound_at, s.started_at) / 1e6, 3) AS latency_seconds
FROM pods p
JOIN bound b ON b.cluster = p.cluster AND b.uid = p.uid
LEFT JOIN started s ON s.cluster = p.cluster AND s.uid = p.uid
ORDER BY p.cluster, b.bound_at, p.namespace, p.name

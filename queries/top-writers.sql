-- Top writers: write requests per user, user agent and resource, busiest first.
--
-- One row per cluster, user, user agent, API group, resource and subresource, counting the audited
-- requests (final stage) whose verb writes: create, update, patch, delete, deletecollection.
-- writes     all of them; creates/updates/patches/deletes by verb (deletes include deletecollection)
-- failed     those answered with a status code >= 400 (conflicts counts the 409s among them)
-- p50_ms, max_ms   audit stage latency (stageTimestamp - requestReceivedTimestamp) in milliseconds
-- See `slowest-requests` for the slowest requests themselves.
SELECT cluster, user, user_agent, coalesce(api_group, '') AS api_group, resource, coalesce(subresource, '') AS subresource,
       count(*) AS writes,
       count(*) FILTER (WHERE verb = 'create') AS creates,
       count(*) FILTER (WHERE verb = 'update') AS updates,
       count(*) FILTER (WHERE verb = 'patch') AS patches,
       count(*) FILTER (WHERE verb IN ('delete', 'deletecollection')) AS deletes,
       count(*) FILTER (WHERE status_code >= 400) AS failed,
       count(*) FILTER (WHERE status_code = 409) AS conflicts,
       round(quantile_cont(date_diff('microsecond', start_time, end_time), 0.5) / 1e3, 3) AS p50_ms,
       round(max(date_diff('microsecond', start_time, end_time)) / 1e3, 3) AS max_ms
FROM spans
WHERE kind = 'audit' AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')
GROUP BY ALL
ORDER BY cluster, writes DESC, user, user_agent, api_group, resource, subresource

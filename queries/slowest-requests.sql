-- Slowest requests: the audited requests with the longest apiserver latency, per cluster (100 by default).
--
-- @param top_n how many requests per cluster (default 100)
--
-- latency_ms is the audit stage latency: stageTimestamp - requestReceivedTimestamp of the record's
-- final stage (ResponseComplete or Panic), in milliseconds. Long-running requests are left out:
-- watches, and the exec, attach, portforward, proxy and log subresources (their latency is how
-- long the stream stayed open). Ties are broken by time, then audit ID.
WITH ranked AS (
    SELECT cluster, start_time, audit_id, verb, coalesce(api_group, '') AS api_group, resource,
           coalesce(subresource, '') AS subresource, namespace, name, user, user_agent, status_code,
           date_diff('microsecond', start_time, end_time) AS latency_us,
           row_number() OVER (PARTITION BY cluster ORDER BY date_diff('microsecond', start_time, end_time) DESC, start_time, audit_id) AS rank
    FROM spans
    WHERE kind = 'audit' AND verb <> 'watch'
      AND coalesce(subresource, '') NOT IN ('exec', 'attach', 'portforward', 'proxy', 'log')
)
SELECT cluster, rank, round(latency_us / 1e3, 3) AS latency_ms,
       strftime(start_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS received_at,
       verb, api_group, resource, subresource, namespace, name, user, user_agent, status_code, audit_id
FROM ranked
WHERE rank <= coalesce(getvariable('top_n'), 100)
ORDER BY cluster, rank

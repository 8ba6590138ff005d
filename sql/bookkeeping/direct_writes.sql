-- Statements recorded as written straight to the partitioned copy $1: how many, the last id, the first three.
select count(*)::int as n, coalesce(max(id), 0)::text as last,
  coalesce((array_agg(format('%s by %s at %s: %s', op, by_user, to_char(at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), query) order by id))[1:3], '{}') as first
from partition_switchover.direct_writes where table_oid = to_regclass($1::text)

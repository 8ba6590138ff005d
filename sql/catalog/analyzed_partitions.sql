-- $1 schema, $2 partition names: those with statistics of their own already (an ANALYZE ran on them since they were made; an empty one has none)
select distinct tablename::text as name from pg_stats where schemaname = $1 and tablename = any($2::text[]) and not inherited

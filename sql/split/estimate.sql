-- the planner's row estimate of table $1 (regclass text), 0 when never analyzed: rows
select greatest(c.reltuples, 0)::bigint as rows from pg_class c where c.oid = $1::regclass

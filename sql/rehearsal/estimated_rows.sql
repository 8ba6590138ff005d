-- $1 qualified table name: the planner's row estimate (negative when never analyzed); no row when it does not exist.
select reltuples::bigint as n from pg_class where oid = to_regclass($1::text)

-- $1 schema, $2 relation names, $3 function names, $4 table oid, $5 trigger names: which of the
-- names a switchover would create already exist.
select 'relation' as what, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = any($2::text[])
union all
select 'function', p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = $1 and p.proname = any($3::text[])
union all
select 'trigger', t.tgname from pg_trigger t where t.tgrelid = $4::oid and t.tgname = any($5::text[]) and not t.tgisinternal

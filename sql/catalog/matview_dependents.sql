-- $1 a materialized view's qualified name: the views, materialized views and rules that read it, and functions with a SQL body that name it, each with the statement that drops it (plain: schema.name unquoted).
select case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'rule' end as kind,
       format('%I.%I', n.nspname, c.relname) as name, n.nspname || '.' || c.relname as plain,
       case c.relkind when 'v' then format('DROP VIEW %I.%I', n.nspname, c.relname)
                      when 'm' then format('DROP MATERIALIZED VIEW %I.%I', n.nspname, c.relname)
                      else format('DROP RULE %I ON %I.%I', r.rulename, n.nspname, c.relname) end as drop_sql
from pg_depend d
join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
join pg_class c on c.oid = r.ev_class
join pg_namespace n on n.oid = c.relnamespace
where d.refclassid = 'pg_class'::regclass and d.refobjid = to_regclass($1::text) and c.oid <> to_regclass($1::text)
union
select 'function', p.oid::regprocedure::text, p.oid::regprocedure::text, format('DROP FUNCTION %s', p.oid::regprocedure)
from pg_depend d
join pg_proc p on d.classid = 'pg_proc'::regclass and p.oid = d.objid
where d.refclassid = 'pg_class'::regclass and d.refobjid = to_regclass($1::text)
order by 1, 2

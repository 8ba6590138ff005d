-- $1 a table's oid: what outside the table depends on it and is not a view (views are carried by
-- CREATE OR REPLACE VIEW): materialized views and rules of other relations, functions with a SQL
-- body, other tables' foreign keys and policies. A DROP of the table refuses over each (2BP01);
-- a rename leaves each on the table it names now. Each with the statement that removes it and, where
-- one exists, the statement that makes it again.
select 'materialized view' as kind, format('%I.%I', n.nspname, c.relname) as name,
       format('DROP MATERIALIZED VIEW %I.%I', n.nspname, c.relname) as drop_sql,
       format('CREATE MATERIALIZED VIEW %I.%I AS %s', n.nspname, c.relname, rtrim(btrim(pg_get_viewdef(c.oid)), ';')) as create_sql
from pg_depend d
join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
join pg_class c on c.oid = r.ev_class
join pg_namespace n on n.oid = c.relnamespace
where d.refclassid = 'pg_class'::regclass and d.refobjid = $1::oid and c.oid <> $1::oid and c.relkind = 'm'
union
select 'rule', format('%I on %s', r.rulename, r.ev_class::regclass), format('DROP RULE %I ON %s', r.rulename, r.ev_class::regclass), pg_get_ruledef(r.oid)
from pg_depend d
join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and r.oid = d.objid
join pg_class c on c.oid = r.ev_class
where d.refclassid = 'pg_class'::regclass and d.refobjid = $1::oid and c.oid <> $1::oid and c.relkind not in ('v', 'm')
union
select 'function', p.oid::regprocedure::text, format('DROP FUNCTION %s', p.oid::regprocedure), null
from pg_depend d
join pg_proc p on d.classid = 'pg_proc'::regclass and p.oid = d.objid
where d.refclassid = 'pg_class'::regclass and d.refobjid = $1::oid
union
select 'foreign key', format('%I on %s', c.conname, c.conrelid::regclass), format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
from pg_constraint c
where c.confrelid = $1::oid and c.contype = 'f' and c.conparentid = 0 and c.conrelid <> $1::oid
union
select 'policy', format('%I on %s', p.polname, p.polrelid::regclass), format('DROP POLICY %I ON %s', p.polname, p.polrelid::regclass), null
from pg_depend d
join pg_policy p on d.classid = 'pg_policy'::regclass and p.oid = d.objid
where d.refclassid = 'pg_class'::regclass and d.refobjid = $1::oid and p.polrelid <> $1::oid
order by 1, 2

-- $1 a table's oid: the foreign keys of other tables that reference it (on a partitioned
-- referencing table, the parent's), with the referencing table (and its relkind), its owner and whether the worker's
-- role (me) acts as that owner (to re-create them), the definition (read it with search_path =
-- pg_catalog: names schema-qualified), its target as that text names it, the referenced columns.
select c.conname as name, n.nspname as schema, r.relname as table, r.relkind::text as relkind, pg_get_userbyid(r.relowner) as owner,
       pg_has_role(current_user, r.relowner, 'USAGE') as acts_as_owner, current_user::text as me,
       pg_get_constraintdef(c.oid) as definition, c.convalidated as validated,
       format('%I.%I', tn.nspname, t.relname) as target,
       array(select a.attname::text from unnest(c.confkey) k join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k order by 1) as ref_columns
from pg_constraint c
join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace
join pg_class t on t.oid = c.confrelid join pg_namespace tn on tn.oid = t.relnamespace
where c.confrelid = $1::oid and c.contype = 'f' and c.conrelid <> $1::oid and c.conparentid = 0
order by n.nspname, r.relname, c.conname

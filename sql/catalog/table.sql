-- $1 schema, $2 table: the relation, its size estimate and comment, its owner and whether the
-- worker's role can act as that owner (to give the new table the same owner); its storage
-- parameters and its TOAST table's (each partition is made with them).
select c.oid::int as oid, c.relkind::text as relkind, c.reltuples::bigint as reltuples,
       obj_description(c.oid, 'pg_class') as comment, c.relacl::text[] as acl,
       pg_get_userbyid(c.relowner) as owner, current_user::text as me,
       (select rolsuper from pg_roles where rolname = current_user) as superuser,
       pg_has_role(current_user, c.relowner, 'USAGE') as acts_as_owner,
       has_schema_privilege(c.relowner, c.relnamespace, 'CREATE') as owner_can_create,
       coalesce(c.reloptions, '{}')::text[] as options,
       coalesce((select t.reloptions from pg_class t where t.oid = c.reltoastrelid), '{}')::text[] as toast_options
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2

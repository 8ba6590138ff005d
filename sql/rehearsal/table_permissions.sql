-- $1 schema, $2 table names: per table whether it exists, whether the current role owns it (or is a member of its owner) and may SELECT, INSERT, UPDATE and DELETE it.
select t as table, c.oid is not null as exists,
       coalesce(pg_has_role(current_user, c.relowner, 'USAGE'), false) as owner,
       coalesce(has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE'), false) as dml
  from unnest($2::text[]) t
  left join pg_class c on c.oid = to_regclass(format('%I.%I', $1::text, t))

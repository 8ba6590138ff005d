-- Of the role names $1, those that do not exist on this server (cutover.protectRoles).
select n.name from unnest($1::text[]) as n(name) where not exists (select 1 from pg_roles r where r.rolname = n.name) order by 1

-- $1 table oid: its row-level security flags and policies (expressions as pg_get_expr prints
-- them; read with search_path = pg_catalog so function names come qualified).
select c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
       coalesce((
         select json_agg(json_build_object(
                  'name', p.polname, 'permissive', p.polpermissive, 'cmd', p.polcmd::text,
                  'roles', case when p.polroles = '{0}' then '{}'::text[]
                                else array(select r.rolname from pg_roles r where r.oid = any(p.polroles) order by r.rolname)::text[] end,
                  'using', pg_get_expr(p.polqual, p.polrelid),
                  'withCheck', pg_get_expr(p.polwithcheck, p.polrelid))
                order by p.polname)
         from pg_policy p where p.polrelid = c.oid), '[]') as policies
from pg_class c
where c.oid = $1::oid

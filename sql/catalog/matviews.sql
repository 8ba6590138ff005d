-- $1 table oid, $2 name of <table>_partitioned: the materialized views whose rules read the table, with what a build over <table>_partitioned needs.
-- pg_get_viewdef qualifies names by the caller's search_path (preflight reads with search_path = pg_catalog).
-- printed/retarget/alias: the table's name as pg_get_viewdef prints it, the partitioned table's, and the table's bare name (the alias its columns are printed with).
-- rows_read: the planner's estimate of the rows of every table and materialized view it reads (its refresh cost).
select v.oid::bigint as oid, current_user as worker, n.nspname as schema, v.relname as name, pg_get_userbyid(v.relowner) as owner,
       pg_get_viewdef(v.oid) as definition, coalesce(v.reloptions, '{}')::text[] as options, v.relispopulated as populated,
       ts.spcname as tablespace, coalesce(v.relacl::text[], '{}') as acl, obj_description(v.oid, 'pg_class') as comment,
       pg_total_relation_size(v.oid)::bigint as bytes,
       pg_has_role(v.relowner, 'MEMBER') as worker_is_member,
       has_schema_privilege(v.relowner, n.oid, 'CREATE') as owner_can_create,
       quote_ident(tn.nspname) || '.' || quote_ident(t.relname) as printed,
       quote_ident(tn.nspname) || '.' || quote_ident($2::text) as retarget,
       quote_ident(t.relname) as alias,
       (select coalesce(sum(greatest(r.reltuples, 0)), 0)::bigint from pg_class r
         where r.relkind in ('r', 'p', 'm') and r.oid in (select d2.refobjid from pg_depend d2 join pg_rewrite w2 on w2.oid = d2.objid
           where d2.classid = 'pg_rewrite'::regclass and d2.refclassid = 'pg_class'::regclass and w2.ev_class = v.oid and d2.refobjid <> v.oid)) as rows_read,
       array(select distinct format('%I.%I', rn.nspname, r.relname) from pg_depend d2 join pg_rewrite w2 on w2.oid = d2.objid
         join pg_class r on r.oid = d2.refobjid join pg_namespace rn on rn.oid = r.relnamespace
         where d2.classid = 'pg_rewrite'::regclass and d2.refclassid = 'pg_class'::regclass and w2.ev_class = v.oid and d2.refobjid <> v.oid
         order by 1)::text[] as reads
from pg_class v
join pg_namespace n on n.oid = v.relnamespace
left join pg_tablespace ts on ts.oid = v.reltablespace
join pg_class t on t.oid = $1::oid
join pg_namespace tn on tn.oid = t.relnamespace
where v.relkind = 'm' and v.oid in (select r.ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid
  where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjid = $1::oid)
order by n.nspname, v.relname

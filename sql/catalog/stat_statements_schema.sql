-- the schema pg_stat_statements is installed in (nspname), no row without the extension; no parameters
select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_stat_statements'

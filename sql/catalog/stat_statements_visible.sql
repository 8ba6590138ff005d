-- whether a relation pg_stat_statements is on the search path (ok); no parameters
select to_regclass('pg_stat_statements') is not null as ok

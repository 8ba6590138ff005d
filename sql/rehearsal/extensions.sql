-- No parameters: each installed extension as "name version", by name.
select extname || ' ' || extversion as e from pg_extension order by extname

-- the server's databases whose name matches a LIKE pattern ($1), by name; templates and databases refusing connections left out
select datname::text as name from pg_database
  where datname like $1::text and not datistemplate and datallowconn
  order by datname collate "C"

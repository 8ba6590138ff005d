-- No parameters: the database's clock (clock_timestamp()) in milliseconds since the epoch.
select (extract(epoch from clock_timestamp()) * 1000)::float8 as ms

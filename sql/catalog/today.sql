-- the server's current date in UTC as YYYY-MM-DD (today); no parameters
select (now() at time zone 'UTC')::date::text as today

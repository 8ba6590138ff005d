-- the retention cutoff: the server's today in UTC minus $1 (interval text, e.g. '7 years') as YYYY-MM-DD (cutoff)
select ((now() at time zone 'UTC')::date - $1::interval)::date::text as cutoff

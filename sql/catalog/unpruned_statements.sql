-- The application's most called statements (pg_stat_statements, this database) that name table $1
-- and filter (WHERE) on its key column $3 but never name its partition key $2: after the
-- switchover they visit every partition. A text match; the query whole, its white space folded.
select s.calls::bigint as calls, regexp_replace(s.query, '\s+', ' ', 'g') as query
from pg_stat_statements s
where s.dbid = (select oid from pg_database where datname = current_database())
  and s.query ~* ('\m' || regexp_replace($1::text, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '\M')
  and s.query !~* ('\m' || regexp_replace($2::text, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '\M')
  and s.query ~* ('\mwhere\M.*\m' || regexp_replace($3::text, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') || '\M')
  and s.query !~* 'partition_switchover'
order by s.calls desc
limit 5

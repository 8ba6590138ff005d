-- $1 table oid: the subscriptions the table is a target of (their apply workers write it as
-- session_replication_role = replica, which no ordinary trigger sees).
select s.subname as name, s.subenabled as enabled, sr.srsubstate::text as state
from pg_subscription_rel sr join pg_subscription s on s.oid = sr.srsubid
where sr.srrelid = $1::oid
order by s.subname

-- The xids of the transactions of this database that hold one now, other than ours (no parameters).
select backend_xid::text as xid from pg_stat_activity
 where datname = current_database() and backend_xid is not null and pid <> pg_backend_pid()

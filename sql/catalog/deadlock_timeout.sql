-- the server's deadlock_timeout in milliseconds (ms); no parameters
select extract(epoch from current_setting('deadlock_timeout')::interval) * 1000 as ms

select tgname as name, tgenabled::text as enabled from pg_trigger where tgrelid = $1::regclass and not tgisinternal

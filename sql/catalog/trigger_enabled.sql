select t.tgenabled::text as enabled from pg_trigger t
  where t.tgrelid = $1::regclass and t.tgname = $2::text and not t.tgisinternal

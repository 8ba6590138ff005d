select pg_get_userbyid(relowner) as o, current_user as me from pg_class where oid = $1::regclass

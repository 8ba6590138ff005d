SELECT pg_get_expr(relpartbound, oid) AS b FROM pg_class WHERE oid = $1::regclass

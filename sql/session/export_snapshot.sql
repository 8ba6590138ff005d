-- the transaction's snapshot exported for another session to import (s); no parameters
select pg_export_snapshot() as s

-- Settings of this transaction: no parallel workers, so a scan takes one core (no parameters, no rows).
set local max_parallel_workers_per_gather = 0

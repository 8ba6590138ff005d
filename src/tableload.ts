// A load generator for any table the switchover accepts, derived from the catalog: the writes
// an application makes (insert, update, a partition-key move, delete), sent as plain SQL that
// names the table, so after cutover the same statements reach the partitioned table.
//
// planLoad reads the catalog once and returns a plain description (JSON, no functions: it can be
// recorded in a workflow's history or shown in a report), with the SQL of each operation or the
// reason it cannot run. startLoad runs the plans at a rate and counts what happened per op kind
// and per segment the caller marks ('copy', 'cutover', ...).
//
// What it writes, and why it is safe:
// - insert clones a row it has seen (sampled at start, or inserted itself) with a new key: a key
//   with an identity, serial or uuid default draws its own; an integer key without one takes
//   values above the max read at start, plus a random per-run offset so two runs do not collide.
//   Every other column is copied, so foreign keys point at values that exist.
// - update changes one column that nothing depends on: not in the primary key, not the
//   partition key, not generated, not in a foreign key, unique index or check constraint.
// - move shifts the partition key by whole intervals, within the periods the data spans (plus
//   one on each side; exactly the data's range when a check constraint limits the key).
// - delete removes only rows it inserted itself (by the key its insert returned).
// Nothing here imports the demo (src/seed.ts, src/load.ts) nor any other module of ours: the
// plan is src/loadplan.ts (its SQL src/loadsql.ts), the run src/loadrun.ts (its counts src/loadstats.ts).
export * from './loadplan';
export * from './loadrun';
export * from './loadstats';

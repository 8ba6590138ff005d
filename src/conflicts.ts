// Application statements the widened primary key breaks. After cutover the primary key is the
// legacy key plus the partition key, so `INSERT ... ON CONFLICT (id)` finds no unique index to
// match ("there is no unique or exclusion constraint matching the ON CONFLICT specification"),
// and `ON CONFLICT ON CONSTRAINT <pkey>` now conflicts only on (id, partition key). Pure: the
// statements come from pg_stat_statements (activities/preflight.ts reads it when installed).

/** Lower-cased, unquoted column names of a conflict target list, e.g. `("Id", tenant)` → `id,tenant` sorted. */
function columnSet(list: string): string {
  return list
    .split(',')
    .map((c) =>
      c
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase(),
    )
    .sort()
    .join(',');
}

/** Whether `query` writes `table` (as a name of its own, quoted or not, schema-qualified or not). */
function mentions(query: string, table: string): boolean {
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s.(,])("${escaped}"|${escaped})($|[\\s(,;])`, 'i').test(query);
}

/** The statements that name the old primary key as their conflict target, by columns or by constraint name. */
export function conflictTargetsAffected(queries: string[], opts: { table: string; key: string[]; constraint: string }): string[] {
  const key = columnSet(opts.key.join(','));
  return queries.filter((q) => {
    if (!mentions(q, opts.table)) return false;
    const byColumns = [...q.matchAll(/on\s+conflict\s*\(([^()]*)\)/gi)].some((m) => columnSet(m[1]) === key);
    const byName = [...q.matchAll(/on\s+conflict\s+on\s+constraint\s+("(?:[^"]|"")+"|[\w$]+)/gi)].some(
      (m) =>
        m[1]
          .replace(/^"(.*)"$/, '$1')
          .replace(/""/g, '"')
          .toLowerCase() === opts.constraint.toLowerCase(),
    );
    return byColumns || byName;
  });
}

/** The plan's note on a widened primary key: what it means for the application until and after cleanup. */
export function widenedKeyNote(opts: { table: string; key: string[]; partitionKey: string }): string {
  const old = opts.key.join(', ');
  return (
    `the primary key of ${opts.table} widens from (${old}) to (${old}, ${opts.partitionKey}): an application statement with ` +
    `ON CONFLICT (${old}) fails after cutover (no unique index matches it; write ON CONFLICT (${old}, ${opts.partitionKey})), and ` +
    `ON CONFLICT ON CONSTRAINT then conflicts only on the wider key. Until cleanup, an insert that reuses an existing ${old} ` +
    `in another period fails (the legacy table, kept for rollback, still enforces (${old})); after cleanup it is accepted`
  );
}

// One pg Pool per database target per worker; helpers for transactions and SQL files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { fail } from './errors';

export type Pools = { get(name: string): pg.Pool; names(): string[]; end(): Promise<void> };

export function createPools(targets: Record<string, string>, max = 8): Pools {
  const pools = new Map<string, pg.Pool>();
  return {
    get(name) {
      const url = targetUrl(targets, name);
      if (!url) {
        throw fail(
          'UnknownDatabase',
          `database target "${name}" is not configured on this worker; set DATABASE_URL${name.split('/')[0] === 'default' ? '' : `_${name.split('/')[0].toUpperCase()}`} ` +
            `(configured: ${Object.keys(targets).join(', ') || 'none'})`,
          { database: name },
        );
      }
      let pool = pools.get(name);
      if (!pool) {
        // A fleet's server-wide targets (`<target>/<database>`) come and go by the hundred: their
        // idle connections close after a second, so finished databases hold no server slots.
        const idleTimeoutMillis = name.includes('/') ? 1000 : 10000;
        pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis, application_name: 'partition-switchover' });
        // An idle client that loses its connection must not crash the worker.
        pool.on('error', (err) => console.error(`pg pool ${name}: ${err.message}`));
        pools.set(name, pool);
      }
      return pool;
    },
    names: () => Object.keys(targets),
    async end() {
      await Promise.all([...pools.values()].map((p) => p.end()));
      pools.clear();
    },
  };
}

/**
 * A target's connection string: `targets[name]`, or for `<target>/<database>` (a fleet's
 * server-wide targets) the target's with that database name; undefined when not configured.
 */
export function targetUrl(targets: Record<string, string>, name: string): string | undefined {
  const [server, database] = name.split('/');
  if (database === undefined || !targets[server]) return targets[name];
  const u = new URL(targets[server]);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function withClient<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  // pg-pool listens for 'error' only on idle clients: a backend that dies while this one is checked
  // out (pg_terminate_backend, restart) would emit an unhandled 'error' and crash the worker. The
  // running query rejects on its own; this only marks the client broken.
  const onError = (err: Error) => void (broken ??= err);
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (err) {
    broken = err;
    throw err;
  } finally {
    client.off('error', onError);
    // A client whose query failed mid-transaction or whose backend died is discarded.
    client.release(broken instanceof Error ? broken : undefined);
  }
}

/** One transaction on a client already held: committed when `fn` returns, rolled back when it throws. */
export async function inTx<T, C extends pg.ClientBase>(c: C, fn: (c: C) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  await c.query(begin);
  try {
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** One transaction that is always rolled back, whatever `fn` does: trials that must leave nothing. */
export async function trialTx<T, C extends pg.ClientBase>(c: C, fn: (c: C) => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  let out: T;
  try {
    out = await fn(c);
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  // A rollback that fails here fails the caller: its client is then discarded, not reused mid-transaction.
  await c.query('ROLLBACK');
  return out;
}

export async function withTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  return withClient(pool, (c) => inTx(c, fn, begin));
}

const cache = new Map<string, string>();
/** Static SQL text from `sql/<name>.sql`. */
export function sqlFile(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(join(__dirname, '..', 'sql', `${name}.sql`), 'utf8');
    cache.set(name, text);
  }
  return text;
}

// The benchmark's application writer, exactly as issue 15's fourth row defines it: single-row
// writes on `revenues` at a fixed rate (default 200/s) over ONE connection, in its own process so
// the benchmark's polling cannot delay it. Op i is due at start + i / rate (absolute schedule):
// an op that is late (the previous one took long) is sent at once, never skipped, and measured.
// Each op is recorded as [sent at (epoch ms), due at (epoch ms), latency ms, kind, ok].
//
// Run as a child with an IPC channel (bench/run.ts): it starts writing at once, sends
// {ready: true} once connected, and on the message 'stop' finishes the op in flight and sends
// back its WriterResult, then exits. `tsx bench/writer.ts <url> [rate]` alone writes for 10 s and
// prints a summary.
import pg from 'pg';

export const WRITER_KINDS = ['insert', 'update', 'delete'] as const;
export type WriterKind = (typeof WRITER_KINDS)[number];
/** [sentAtEpochMs, dueAtEpochMs, latencyMs, kind index in WRITER_KINDS, 1 ok / 0 failed] */
export type WriterOp = [number, number, number, number, number];
export interface WriterResult {
  rate: number;
  ops: WriterOp[];
  errors: string[];
}

/** Wall clock in epoch ms with sub-ms resolution (comparable with Temporal's event times on this machine). */
const now = () => performance.timeOrigin + performance.now();

/** One statement per op, 6 in 10 inserts, 3 updates of a random existing row, 1 delete of a row this writer inserted. */
const SQL = {
  insert: `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
    values ($1, $2, $3, $4, 'rooms', 'posted', 'bench writer') returning id`,
  update: `update revenues set amount_cents = amount_cents + 1, updated_at = now() where id = $1`,
  delete: `delete from revenues where id = $1`,
};

export async function runWriter(url: string, rate: number, stopped: () => boolean, onReady: () => void): Promise<WriterResult> {
  const c = new pg.Client({ connectionString: url, application_name: 'ps-bench-writer' });
  await c.connect();
  const st = (await c.query('select max(id)::bigint as max, (select min(id) from organizations)::bigint as org from revenues')).rows[0];
  const maxId = Number(st.max ?? 1);
  const org = Number(st.org ?? 1);
  const mine: number[] = [];
  const ops: WriterOp[] = [];
  const errors: string[] = [];
  let rnd = 12345;
  const random = () => (rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648;
  const period = 1000 / rate;
  const start = now();
  onReady();
  for (let i = 0; !stopped(); i++) {
    const due = start + i * period;
    const wait = due - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (stopped()) break;
    const x = random();
    const kind: WriterKind = x < 0.6 || (x >= 0.9 && !mine.length) ? 'insert' : x < 0.9 ? 'update' : 'delete';
    const sent = now();
    let ok = 1;
    try {
      if (kind === 'insert') {
        // Dated within the last 30 days: inside the seeded months and the premade partitions.
        const at = new Date(Date.now() - random() * 30 * 86400_000).toISOString();
        const r = await c.query(SQL.insert, [org, 1 + Math.floor(random() * 5), at, Math.floor(random() * 100000)]);
        mine.push(Number(r.rows[0].id));
      } else if (kind === 'update') {
        await c.query(SQL.update, [1 + Math.floor(random() * maxId)]);
      } else {
        await c.query(SQL.delete, [mine.splice(Math.floor(random() * mine.length), 1)[0]]);
      }
    } catch (err) {
      ok = 0;
      if (errors.length < 20) errors.push(`${kind}: ${(err as Error).message}`);
    }
    ops.push([sent, due, now() - sent, WRITER_KINDS.indexOf(kind), ok]);
  }
  await c.end().catch(() => undefined);
  return { rate, ops, errors };
}

if (require.main === module) {
  const url = process.argv[2];
  const rate = Number(process.argv[3] ?? 200);
  if (!url) {
    console.error('usage: tsx bench/writer.ts <database url> [ops per second]');
    process.exit(1);
  }
  let stop = false;
  if (process.send) {
    process.on('message', (m) => m === 'stop' && (stop = true));
  } else {
    setTimeout(() => (stop = true), 10_000);
  }
  runWriter(
    url,
    rate,
    () => stop,
    () => process.send?.({ ready: true }),
  )
    .then((res) => {
      if (process.send) {
        process.send({ result: res }, () => process.exit(0));
      } else {
        const lat = res.ops.map((o) => o[2]).sort((a, b) => a - b);
        console.log(
          `${res.ops.length} ops, p50 ${lat[Math.floor(lat.length / 2)]?.toFixed(2)} ms, p99 ${lat[Math.floor(lat.length * 0.99)]?.toFixed(2)} ms, ${res.errors.length} errors`,
        );
      }
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}

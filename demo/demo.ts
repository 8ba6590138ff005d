// The full demo on the embedded default stack: a seeded demo database, a Temporal dev server
// (unless TEMPORAL_ADDRESS is set), a worker, the live writer, and a switchover of all three
// demo tables with a progress bar, the verification report, approval and the final report.
//   npm run demo -- [--rows N] [--manual-approve] [--no-load] [--rate OPS] [--keep]
//   npm run demo -- --fleet N [--rows R] [--manual-approve]   (a fleet over N demo databases: demo/fleet.ts)
import pg from 'pg';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { connectClient, startSwitchover } from '../bin/client';
import { DEFAULT_DATABASE_URL } from '../src/config';
import { startDevServer, type DevServer } from './devserver';
import { startLoad, type LoadHandle } from './load';
import { DEMO_TABLES, seed } from './seed';
import { statusQuery } from '../src/shared';
import type { SwitchoverStatus } from '../src/status';
import { createWorker } from '../bin/worker';
import type { SwitchoverReport } from '../workflows/switchover';

function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function bar(done: number, total: number, width = 30): string {
  const f = total > 0 ? Math.min(1, done / total) : 1;
  const n = Math.round(f * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(100 * f).toFixed(0).padStart(3)}%`;
}

function printVerification(s: SwitchoverStatus) {
  console.log('\nVerification report (legacy vs partitioned, one snapshot):');
  for (const t of s.verification?.tables ?? []) {
    const sums = Object.entries(t.legacy.sums)
      .map(([c, v]) => `${c}=${v}`)
      .join(' ');
    console.log(
      `  ${t.ok ? 'OK      ' : 'MISMATCH'} ${t.table.padEnd(20)} rows ${t.legacy.rows} = ${t.partitioned.rows}  ${sums}  row-hash ${t.legacy.rowHash}` +
        (t.ok ? '' : `  ranges ${t.mismatches.map((m) => m.range).join(',')} ids ${t.sampleIds.join(',')}`),
    );
  }
}

async function run() {
  // The SDK's own INFO lines would bury the progress bar.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const rows = Number(option('rows', '300000'));
  const baseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const dbName = option('database', 'partition_switchover_demo');
  const dbUrl = new URL(baseUrl);
  dbUrl.pathname = `/${dbName}`;

  console.log(`Creating demo database ${dbName} with ${rows.toLocaleString()} rows per table...`);
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${pg.escapeIdentifier(dbName)} with (force)`);
  await admin.query(`create database ${pg.escapeIdentifier(dbName)}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
  const seeded = await seed(pool, { rows });
  console.log(`  seeded in ${seeded.seconds.toFixed(1)} s: ${JSON.stringify(seeded.rows)}`);

  let server: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    server = await startDevServer();
    address = server.address;
    console.log(`Temporal dev server at ${address}; UI: ${server.uiUrl}`);
  } else {
    console.log(`Using the Temporal server at ${address}`);
  }
  const taskQueue = `partition-switchover-demo`;
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createWorker({ connection: nativeConnection, taskQueue, targets: { default: dbUrl.toString() } });
  const workerRun = worker.run();
  const client = await connectClient(address);

  let load: LoadHandle | undefined;
  if (!flag('no-load')) {
    load = startLoad({ connectionString: dbUrl.toString(), ratePerSec: Number(option('rate', '200')) });
    load.mark('baseline');
    console.log(`Live writer running at ${option('rate', '200')} ops/s (inserts, status updates, upserts, month corrections, voids)`);
  }

  const handle = await startSwitchover(client, { tables: [...DEMO_TABLES], batchSize: 10000 }, { workflowId: `demo-switchover-${Date.now()}`, taskQueue });
  console.log(`Started workflow ${handle.workflowId}${server ? `: ${server.uiUrl}/namespaces/default/workflows/${handle.workflowId}` : ''}`);

  let lastPhase = '';
  let approved = false;
  const resultPromise = handle.result() as Promise<SwitchoverReport>;
  let finished = false;
  resultPromise.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished) {
    const s = await handle.query(statusQuery).catch(() => undefined);
    if (s) {
      if (s.phase !== lastPhase) {
        if (lastPhase) process.stdout.write('\n');
        console.log(`phase: ${s.phase}`);
        if (s.phase === 'copy') load?.mark('copy');
        if (s.phase === 'cutover') load?.mark('cutover');
        if (s.phase === 'done') load?.mark('after');
        lastPhase = s.phase;
      }
      if (s.phase === 'copy') {
        const line = Object.values(s.progress)
          .map((p) => `${p.table} ${bar(p.rowsCopied, p.rowsEstimated, 12)} ${p.rowsPerSec.toLocaleString()} rows/s`)
          .join('  ');
        process.stdout.write(`\r  ${line}   `);
      }
      if (s.phase === 'awaiting_approval' && !approved) {
        approved = true;
        load?.mark('approval');
        printVerification(s);
        const cmd = `npm run temporal -- workflow signal --address ${address} --workflow-id ${handle.workflowId} --name approve --input '{"by":"<you>","comment":"verified"}'`;
        if (flag('manual-approve')) {
          console.log(`\nWaiting for your approval. Run:\n  ${cmd}\n(or reject with --name reject --input '{"by":"<you>","reason":"..."}')`);
        } else {
          console.log(`\nApproving automatically (use --manual-approve to approve yourself with:\n  ${cmd})`);
          await handle.signal('approve', { by: 'demo', comment: 'automatic approval by npm run demo' });
        }
      }
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  process.stdout.write('\n');

  let exitCode = 0;
  try {
    const report = await resultPromise;
    await new Promise((r) => setTimeout(r, 1000));
    const loadReport = await load?.stop();
    console.log('\nFinal report:');
    for (const t of report.tables) {
      console.log(
        `  ${t.table.padEnd(20)} ${t.partitionsCreated} partitions, ${t.copy.rows.toLocaleString()} rows copied in ${(t.copy.ms / 1000).toFixed(1)} s, ` +
          `verify ${((t.verification?.ms ?? 0) / 1000).toFixed(1)} s, cutover lock ${t.cutover?.lockMs.toFixed(1)} ms`,
      );
    }
    console.log(
      `  seconds per phase: ${Object.entries(report.phaseMs)
        .map(([p, ms]) => `${p} ${(ms / 1000).toFixed(1)}`)
        .join(', ')}`,
    );
    if (loadReport) {
      console.log(
        `  live writer: ${loadReport.ops} ops, ${loadReport.failures} failed, p50 ${loadReport.latencyMs.p50.toFixed(1)} ms, p99 ${loadReport.latencyMs.p99.toFixed(1)} ms`,
      );
      for (const [seg, st] of Object.entries(loadReport.segments)) {
        console.log(`    ${seg.padEnd(9)} ${st.ops} ops, ${st.failures} failed, p50 ${st.p50.toFixed(1)} ms, p99 ${st.p99.toFixed(1)} ms`);
      }
    }
    // The proof a new user wants: partitioned under their own names, equal to the mirrored legacy rows, future inserts accepted.
    for (const { table } of DEMO_TABLES) {
      const kind = (await pool.query(`select relkind::text from pg_class where relname = $1::text`, [table])).rows[0].relkind;
      const diff = (
        await pool.query(
          `select count(*)::int as n from ((table ${pg.escapeIdentifier(table)} except all table ${pg.escapeIdentifier(`${table}_legacy`)})
           union all (table ${pg.escapeIdentifier(`${table}_legacy`)} except all table ${pg.escapeIdentifier(table)})) d`,
        )
      ).rows[0].n;
      console.log(`  ${table.padEnd(20)} ${kind === 'p' ? 'partitioned' : 'NOT partitioned'}; rows differing from ${table}_legacy: ${diff}`);
      if (kind !== 'p' || diff !== 0) exitCode = 1;
    }
    const future = await pool.query(
      `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category)
       values (1, 1, now() + interval '5 months', 4200, 'rooms') returning tableoid::regclass::text as partition`,
    );
    console.log(`  an insert dated 5 months ahead landed in ${future.rows[0].partition}`);
    console.log(`\nThe old tables stay as <table>_legacy (mirrored) until cleanup:\n  npm run start-switchover -- <file with "mode": "cleanup">`);
  } catch (err) {
    exitCode = 1;
    await load?.stop();
    console.error(`\nThe switchover failed: ${(err as Error).message}`);
  }

  if (flag('keep') && server) {
    console.log(`\n--keep: the dev server and worker keep running (UI ${server.uiUrl}); Ctrl-C to stop.`);
    await workerRun;
  } else {
    worker.worker.shutdown();
    await workerRun;
  }
  await nativeConnection.close();
  await client.connection.close();
  await pool.end();
  await server?.stop();
  process.exit(exitCode);
}

if (require.main === module) {
  const fleet = option('fleet', '');
  (fleet
    ? import('./fleet').then((m) => m.runFleetDemo(Number(fleet), Number(option('rows', '20000')), flag('manual-approve'))).then((code) => process.exit(code))
    : run()
  ).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

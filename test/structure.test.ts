// The structure's rules, measured from the code as `npx tsx scripts/structure.ts` prints it: small
// functions, SQL in its two homes, strategies as data, imports that only go down, file names that
// say their job, and a README Layout that lists every production file.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, normalize } from 'node:path';
import { figures, functionLengths, productionFiles, ROOT, sqlLiterals } from '../scripts/structure';

const files = productionFiles();
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

/** A production file's imports of other production files (type-only ones marked). */
function importsOf(file: string): { to: string; typeOnly: boolean }[] {
  const out: { to: string; typeOnly: boolean }[] = [];
  for (const m of read(file).matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)) {
    const base = normalize(join(dirname(file), m[3]));
    const to = [`${base}.ts`, join(base, 'index.ts')].find((f) => files.includes(f));
    if (to) out.push({ to, typeOnly: !!m[2] });
  }
  return out;
}

/** Layers, lowest first: a file imports only from its own layer or below (workflows take activities as types only). */
const LAYER: Record<string, number> = { src: 0, activities: 1, workflows: 1, bin: 2 };
const layerOf = (f: string) => LAYER[f.split('/')[0]];

test('the figures are measured (the rules below would pass on nothing)', () => {
  const f = figures();
  expect(f.files.length).toBeGreaterThan(50);
  expect(f.fns.length).toBeGreaterThan(300);
  expect(functionLengths('workflows/stages.ts').find((x) => x.name === 'runStage')!.lines).toBeGreaterThan(5);
  // The SQL detector finds SQL where it is meant to be.
  expect(sqlLiterals('src/sqlgen.ts').length).toBeGreaterThan(20);
});

test('no function over 80 lines in src/, activities/, workflows/, bin/', () => {
  const long = files.flatMap(functionLengths).filter((x) => x.lines > 80);
  expect(long.map((x) => `${x.file} ${x.name}: ${x.lines} lines`)).toEqual([]);
});

test('no SQL written inline in activities/: static SQL in sql/*.sql, dynamic SQL from the builders in src/', () => {
  const inline = files.filter((f) => f.startsWith('activities/')).flatMap((f) => sqlLiterals(f).map((s) => `${f}:${s.line} ${s.text}`));
  expect(inline).toEqual([]);
});

test('strategies are stage lists: no strategy test and no attach plan asserted in workflows/', () => {
  const found = files
    .filter((f) => f.startsWith('workflows/'))
    .flatMap((f) => [...read(f).matchAll(/strategy\s*[!=]==|\.attach!/g)].map((m) => `${f}: ${m[0]}`));
  expect(found).toEqual([]);
});

test("the rehearsal's phases call no stage activity themselves: they run the switchover's stage functions and rollbackPlans", () => {
  // Every activity of a stage module (activities/index.ts lists them in runbook order).
  const stageModules = [
    'preflight',
    'bookkeeping',
    'backup',
    'prepare',
    'triggers',
    'copy',
    'recheck',
    'indexes',
    'verify',
    'cutover',
    'attach',
    'rollback-table',
  ];
  const stageActivities = stageModules
    .flatMap((m) => {
      const text = read(`activities/${m}.ts`);
      const bound = /bindDeps\(deps, \{([^}]*)\}\)/.exec(text)?.[1] ?? '';
      return bound
        .split(',')
        .map((x) => x.trim().split(':')[0].trim())
        .filter(Boolean);
    })
    .filter((a) => a !== 'recordEvent'); // an audit row, which every workflow writes of its own events
  expect(stageActivities).toEqual(
    expect.arrayContaining(['preflight', 'ensureState', 'claimTables', 'prepareTable', 'installTriggers', 'rollbackTable', 'attachParent']),
  );
  const calls = files
    .filter((f) => f.startsWith('workflows/rehearsal/'))
    .flatMap((f) => stageActivities.filter((a) => new RegExp(`\\bacts\\.${a}\\b`).test(read(f))).map((a) => `${f}: acts.${a}`));
  expect(calls).toEqual([]);
});

test('imports go down the layers (src, then activities and workflows, then bin), workflows take activities as types, no circle', () => {
  const wrong: string[] = [];
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  for (const [from, tos] of graph) {
    for (const { to, typeOnly } of tos) {
      if (layerOf(to) > layerOf(from)) wrong.push(`${from} → ${to} (up a layer)`);
      if (from.startsWith('workflows/') && to.startsWith('activities/') && !typeOnly) wrong.push(`${from} → ${to} (workflows import activities as types only)`);
      if (from.startsWith('activities/') && to.startsWith('workflows/')) wrong.push(`${from} → ${to} (activities never import workflows)`);
    }
  }
  // Circles, type-only imports included: a depth-first search over the graph.
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') return void wrong.push(`circle: ${[...path.slice(path.indexOf(f)), f].join(' → ')}`);
    state.set(f, 'open');
    for (const { to } of graph.get(f) ?? []) visit(to, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  expect(wrong).toEqual([]);
});

test('every production file name is unique (index.ts aside), so a name says one job', () => {
  const byName = new Map<string, string[]>();
  for (const f of files) if (basename(f) !== 'index.ts') byName.set(basename(f), [...(byName.get(basename(f)) ?? []), f]);
  expect([...byName.values()].filter((v) => v.length > 1)).toEqual([]);
});

test("the README's Layout table names every production file and folder that exists", () => {
  const readme = read('README.md');
  const layout = readme.slice(readme.indexOf('\n## Layout'));
  const named = [...layout.matchAll(/`([a-z][\w./-]*\.(?:ts|sql|sh|js|json|yml))`|`([a-z][\w-]*\/)`/g)].map((m) => m[1] ?? m[2]);
  expect(files.filter((f) => !layout.includes(`\`${f}\``))).toEqual([]);
  expect(named.filter((n) => n.includes('/') && !n.endsWith('/') && !existsSync(join(ROOT, n)))).toEqual([]);
});

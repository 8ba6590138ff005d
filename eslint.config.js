// Lint that keeps the code honest (run by `npm test` before jest, and by CI):
// - everywhere: no floating promises (type-aware), since an un-awaited activity or query hides
//   its failure and, in a workflow, its ordering;
// - in workflow code: no Node built-ins, no `pg`, no module of ours that does I/O, and activities
//   only as types, as samples-typescript does. Workflow code is replayed and must be deterministic.
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));
/** Modules of ours that do I/O or read the environment: workers and activities, never workflows. */
const ioModules = ['db', 'config', 'temporal-cli', 'metrics'];
/** The demo application (demo/): production code never imports it. */
const noDemo = { regex: '(^|/)demo(/.*)?$', message: 'Production code does not import the demo application (demo/).' };

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'coverage/', 'bench/out/', '.cache/'] },
  {
    // The folders tsconfig.json includes (type-aware rules need the program).
    files: ['{src,bin,demo,workflows,activities,test,scripts,bench}/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // An explicit `any` (JSON from the CLI or a history in tests) is a visible choice; tsc strict forbids the implicit one.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['{src,bin,activities}/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [noDemo] }] },
  },
  {
    // Workflow code, including the test-only releases of it that test/upgrade.test.ts bundles.
    files: ['workflows/**/*.ts', 'test/upgrade/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code is replayed: no Node built-ins (do I/O in an activity).' })),
            { name: 'pg', message: 'Workflow code does no I/O: query PostgreSQL from an activity.' },
            { name: '@temporalio/client', message: 'Workflow code does no I/O: use @temporalio/workflow.' },
            { name: '@temporalio/worker', message: 'Workflow code does no I/O: use @temporalio/workflow.' },
            { name: '@temporalio/activity', message: 'Activity code does not run in a workflow.' },
          ],
          patterns: [
            noDemo,
            { group: ['node:*'], message: 'Workflow code is replayed: no Node built-ins (do I/O in an activity).' },
            { regex: '(^|/)bin(/.*)?$', message: 'The entry points (bin/) do I/O; workflow code must not import them.' },
            {
              regex: `(^|/)src/(${ioModules.join('|')})$`,
              message: 'This module does I/O or reads the environment; workflow code must not import it.',
            },
            {
              regex: '(^|/)activities(/.*)?$',
              allowTypeImports: true,
              message: 'Import activities as types only (`import type`) and call them through proxyActivities.',
            },
          ],
        },
      ],
    },
  },
);

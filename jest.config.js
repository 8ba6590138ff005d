/** Tests run against a real PostgreSQL and a real Temporal dev server (see test/global-setup.ts). */
module.exports = {
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true } }] },
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 120000,
  collectCoverageFrom: ['src/**/*.ts', 'bin/**/*.ts', 'demo/**/*.ts', 'workflows/**/*.ts', 'activities/**/*.ts'],
};

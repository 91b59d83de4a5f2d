/** Jest runs TypeScript through esbuild (test/esbuild-transform.cjs): fast, and no second compiler to keep in step. */
module.exports = {
  testEnvironment: '<rootDir>/test/node-environment.cjs',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': '<rootDir>/test/esbuild-transform.cjs' },
  moduleFileExtensions: ['ts', 'js', 'cjs', 'json'],
  testTimeout: 120000,
  maxWorkers: 2,
};

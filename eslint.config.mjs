// ESLint (flat config): typescript-eslint's recommended rules for the whole project, plus Figma's own rules
// (@figma/eslint-plugin-figma-plugins: deprecated sync APIs and the like under `documentAccess: dynamic-page`)
// for the Figma plugin, which need type information from the plugin's two tsconfigs.
import js from '@eslint/js';
import * as figmaPlugin from '@figma/eslint-plugin-figma-plugins';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const browser = { module: 'readonly', window: 'readonly', document: 'readonly', atob: 'readonly', btoa: 'readonly', TextEncoder: 'readonly', Blob: 'readonly', setTimeout: 'readonly', console: 'readonly' };
const node = { Buffer: 'readonly', require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' };

export default defineConfig(
  { ignores: ['**/dist/**', 'node_modules/**', 'test-artifacts/**', 'models/**', 'data/**'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks a value left unused on purpose (destructuring it away, an ignored parameter)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['plugin-figma/src/**/*.ts'],
    languageOptions: {
      parserOptions: { project: ['plugin-figma/tsconfig.code.json', 'plugin-figma/tsconfig.ui.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@figma/figma-plugins': figmaPlugin },
    rules: { ...figmaPlugin.flatConfigs.recommended.rules },
  },
  // the host fakes: browser scripts that Node's tests also load as CommonJS modules
  { files: ['test/e2e/*-harness/**/*.js'], languageOptions: { sourceType: 'script', globals: browser } },
  { files: ['**/*.cjs', '**/*.mjs'], languageOptions: { globals: node } },
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  // the team backends (and the tests' S3 server) are required only when named, so nothing else ever loads them
  {
    files: ['server/store/index.ts', 'server/cli/users.ts', 'test/support/services.ts'],
    rules: { '@typescript-eslint/no-require-imports': ['error', { allow: ['^\\./postgres$', '^\\./s3$', '^\\.\\./store/postgres$', '^s3rver$'] }] },
  },
);

// ESLint: TypeScript rules, plus the layer rules of docs/architecture.md, enforced as import bans.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// One entry per layer: a later entry for the same files would replace, not add to, the bans.
const layer = (files, banned, message) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', {
      patterns: [
        ...banned.map((group) => ({ group: [group], message })),
        { group: ['**/test/**', '**/bench/**'], message: 'src/ never imports test/ or bench/.' },
      ],
    }],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**'] },
  { files: ['bin/**/*.js'], languageOptions: { globals: { process: 'readonly', URL: 'readonly' } } },
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { console: 'readonly' } } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // protocol/: pure, no I/O, runs in the browser too.
  layer(['src/protocol/**'], ['node:*', 'ssh2', 'ws', 'better-sqlite3', 'pino', '**/common/**', '**/net/**', '**/relay/**', '**/agent/**', '**/cli/**', '**/web/**'],
    'protocol/ is pure and runs in the browser: no node:*, no I/O packages, no other layer.'),
  layer(['src/common/**'], ['**/net/**', '**/relay/**', '**/agent/**', '**/cli/**', '**/web/**'], 'common/ sits below every other layer.'),
  layer(['src/net/**'], ['**/relay/**', '**/agent/**', '**/cli/**', '**/web/**'], 'net/ holds I/O adapters without policy: it imports only common/ and protocol/.'),
  layer(['src/relay/**'], ['**/agent/**', '**/cli/**', '**/web/**'], 'relay/ and agent/ never import each other; only cli/ composes them.'),
  layer(['src/agent/**'], ['**/relay/**', '**/cli/**', '**/web/**'], 'relay/ and agent/ never import each other; only cli/ composes them.'),
  // web/: the browser console (TypeScript and TSX), bundled by scripts/build-web.mjs.
  layer(['src/web/**'], ['node:*', '**/common/**', '**/net/**', '**/relay/**', '**/agent/**', '**/cli/**'], 'web/ runs in the browser and imports only protocol/ and npm packages.'),
  layer(['src/cli/**'], [], ''),
  // Only the CLI reads the environment or exits the process.
  {
    files: ['src/**'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-properties': ['error',
        { object: 'process', property: 'env', message: 'Only src/cli/ reads process.env; take the value in your config.' },
        { object: 'process', property: 'exit', message: 'Only src/cli/ exits the process; throw a FerryError.' }],
    },
  },
  // ssh2 writes a malformed Ed25519 key about one time in 256: generateKeyPair() checks and retries.
  {
    files: ['**/*.ts'],
    ignores: ['src/common/ssh-keys.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "MemberExpression[property.name='generateKeyPairSync'][object.name='utils'], MemberExpression[property.name='generateKeyPairSync'][object.property.name='utils']",
        message: "ssh2's generateKeyPairSync makes a malformed key one time in 256: use generateKeyPair() from src/common/ssh-keys.ts.",
      }],
    },
  },
);

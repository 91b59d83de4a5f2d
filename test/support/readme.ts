import * as fs from 'node:fs';
import * as path from 'node:path';

const README = path.resolve(__dirname, '..', '..', 'README.md');
const EDIT = 'npm run edit -- ';

/**
 * The `npm run edit -- ...` commands of the first bash block under the README heading `heading`, each as its
 * argument list (quotes and `\` continuations handled), so tests run exactly what the README tells a user to type.
 */
export function readmeEditCommands(heading: string): string[][] {
  const readme = fs.readFileSync(README, 'utf8');
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README.md has no heading ${JSON.stringify(heading)}`);
  const block = /```bash\n([\s\S]*?)```/.exec(readme.slice(at))![1].replace(/\\\n\s*/g, ' ');
  return block
    .split('\n')
    .filter((line) => line.startsWith(EDIT))
    .map((line) => [...line.slice(EDIT.length).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]));
}

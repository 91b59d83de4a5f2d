/**
 * Whether tests may mount file systems here (a small tmpfs to fill up, a read-only bind mount): they need root.
 * CI runs as root, so a suite that needs it fails there when it cannot; elsewhere it is skipped with a notice.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Null when a tmpfs can be mounted and unmounted here, else why not (mount's first line). */
export function mountProblem(): string | null {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

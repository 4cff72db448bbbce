import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Files kept in the data dir. */
export const ADMIN_KEY_FILE = 'admin.key';
export const SECRET_KEY_FILE = 'secret.key';

/** Writes a file only its owner can read (0600), creating its folder. */
export function writePrivateFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode: 0o600 });
  // mode applies only when the file is created; an existing file is tightened too.
  chmodSync(path, 0o600);
}

export function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

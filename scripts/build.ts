// Builds the published bin: tsc, then copies the SQL migrations beside the compiled stores.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
for (const engine of ['sqlite', 'postgres']) {
  cpSync(`src/storage/${engine}/migrations`, `dist/src/storage/${engine}/migrations`, { recursive: true });
}

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { TEST_ENGINE } from '../harness/engine.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * A TypeScript project outside this one that depends on the package as npm would
 * install it (package.json and the declarations the build emits), type-checking
 * each source given. skipLibCheck: a type the declarations fail to resolve would
 * then silently be `any`, which the wrong use below catches.
 */
function typecheck(sources: string[]): { code: number | null; output: string }[] {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-sdk-consumer-'));
  try {
    const pkg = join(dir, 'node_modules/portcullis');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    const emitted = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--outDir', join(pkg, 'dist')], { encoding: 'utf8' });
    assert.equal(emitted.status, 0, emitted.stdout + emitted.stderr);
    // Its dependencies' own types (typebox, undici, …) as the consumer would have them.
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module' }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['index.ts'] }),
    );
    return sources.map((source) => {
      writeFileSync(join(dir, 'index.ts'), source);
      const checked = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8' });
      return { code: checked.status, output: checked.stdout + checked.stderr };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  "the published SDK's types work in a strict TypeScript project (nodenext), and catch a wrong use",
  { skip: TEST_ENGINE === 'postgres' && 'no store involved: runs in the SQLite pass' },
  () => {
    const use = `import { PortcullisClient, PortcullisError } from 'portcullis/sdk';
const client = new PortcullisClient({ baseUrl: 'http://127.0.0.1:8080', apiKey: 'pcl_x' });
const endpoint = await client.endpoints.get('ep_1');
const timeout: number = endpoint.timeoutSeconds;
const hidden: string[] = endpoint.sensitiveHeaders;
const tested = await client.endpoints.test(endpoint.id);
const deliveryId: string = tested.deliveryId;
console.log(timeout, hidden, deliveryId, PortcullisError.name);
`;
    const [ok, wrong] = typecheck([use, `${use}const url: number = endpoint.url;\n`]);
    assert.equal(ok!.code, 0, ok!.output);
    assert.notEqual(wrong!.code, 0);
    assert.match(wrong!.output, /index\.ts\(9,7\): error TS2322: Type 'string' is not assignable to type 'number'/);
  },
);

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createWorkspace, httpRequest, runCli, runCliJson, startServe } from '../harness/processes.ts';

const ROOT_SECRET = 'root-secret-for-tests-0123456789abcdefXYZ';
const NO_STACK = /\n\s+at [^\n]*[(:]\d+/;

test('invalid configuration stops serve, init and migrate with every problem listed and no secret printed', async (t) => {
  const ws = await createWorkspace(t);
  const file = join(ws.dir, 'portcullis.yaml');
  writeFileSync(file, 'colour: blue\nhost: 127.0.0.1\n');
  const secrets = ['tooShort-XYZ-123', 'hunter2-db-pass', 'redis-pass-77'];
  const env = {
    PORTCULLIS_DATA_DIR: ws.dataDir,
    PORTCULLIS_CONFIG: file,
    PORTCULLIS_PORT: 'abc',
    PORTCULLIS_LOG_LEVEL: 'loud',
    PORTCULLIS_SECRET_KEY: secrets[0],
    PORTCULLIS_DATABASE_URL: `mysql://app:${secrets[1]}@db.example/portcullis`,
    PORTCULLIS_REDIS_URL: `http://:${secrets[2]}@cache.example:6379`,
    PORTCULLIS_CORS_ORIGINS: 'https://ok.example,ftp://nope.example',
  };
  const results = await Promise.all(['serve', 'init', 'migrate'].map(async (command) => ({ command, res: await runCli([command], env, { cwd: ws.dir }) })));
  for (const { command, res } of results) {
    assert.notEqual(res.code, 0, `${command} must fail`);
    const out = res.stdout + res.stderr;
    assert.match(res.stderr, /invalid configuration/, command);
    for (const problem of [/colour: unknown setting/, /port \(PORTCULLIS_PORT\)/, /logLevel \(PORTCULLIS_LOG_LEVEL\)/, /secretKey \(PORTCULLIS_SECRET_KEY\)/, /databaseUrl \(PORTCULLIS_DATABASE_URL\)/, /redisUrl \(PORTCULLIS_REDIS_URL\)/, /corsOrigins \(PORTCULLIS_CORS_ORIGINS\)/]) {
      assert.match(res.stderr, problem, `${command} lists ${problem}`);
    }
    for (const secret of secrets) assert.ok(!out.includes(secret), `${command} printed a secret`);
    assert.doesNotMatch(out, NO_STACK, `${command} printed a stack trace`);
  }
  assert.deepEqual(readdirSync(ws.dataDir), [], 'nothing was initialised');
});

test('a secret file that cannot be read and a lone TLS setting are configuration problems', async (t) => {
  const ws = await createWorkspace(t);
  const res = await runCli(['serve'], { ...ws.env, PORTCULLIS_SECRET_KEY_FILE: join(ws.dir, 'missing.secret'), PORTCULLIS_TLS_CERT: join(ws.dir, 'cert.pem') }, { cwd: ws.dir });
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /PORTCULLIS_SECRET_KEY_FILE: cannot read file \(ENOENT\)/);
  assert.match(res.stderr, /tlsCert and tlsKey .*set both or neither/);
  assert.doesNotMatch(res.stderr, NO_STACK);
});

test('config print shows the effective configuration with secrets redacted and URL passwords masked', async (t) => {
  const ws = await createWorkspace(t);
  const env = {
    PORTCULLIS_SECRET_KEY: ROOT_SECRET,
    PORTCULLIS_DATABASE_URL: 'postgres://app:db-pass-s3cret@db.example:5432/portcullis',
    PORTCULLIS_REDIS_URL: 'redis://:redis-pass-s3cret@cache.example:6379/0',
    PORTCULLIS_PORT: '9090',
  };
  const res = await runCli(['config', 'print', '--json'], env, { cwd: ws.dir });
  assert.equal(res.code, 0, res.stderr);
  const shown = JSON.parse(res.stdout) as Record<string, unknown>;
  assert.equal(shown.secretKey, '[redacted]');
  assert.equal(shown.databaseUrl, 'postgres://app:***@db.example:5432/portcullis');
  assert.equal(shown.redisUrl, 'redis://:***@cache.example:6379/0');
  assert.equal(shown.port, 9090);
  assert.equal(shown.host, '127.0.0.1');
  assert.equal(shown.dataDir, './data');
  assert.deepEqual(shown.corsOrigins, []);

  const plain = await runCli(['config', 'print'], env, { cwd: ws.dir });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^port\s+9090$/m);
  assert.match(plain.stdout, /^secretKey\s+\[redacted\]$/m);
  for (const out of [res.stdout + res.stderr, plain.stdout + plain.stderr]) {
    for (const secret of [ROOT_SECRET, 'db-pass-s3cret', 'redis-pass-s3cret']) assert.ok(!out.includes(secret));
  }
});

test('PORTCULLIS_SECRET_KEY_FILE supplies the root secret, which a store then insists on', async (t) => {
  const ws = await createWorkspace(t);
  const secretFile = join(ws.dir, 'root.secret');
  writeFileSync(secretFile, `${ROOT_SECRET}\n`, { mode: 0o600 });
  const withFile = { ...ws.env, PORTCULLIS_SECRET_KEY_FILE: secretFile };

  const shown = await runCliJson(['config', 'print'], withFile, { cwd: ws.dir });
  assert.equal(shown.secretKey, '[redacted]');

  const first = await runCliJson<{ adminKey: string | null }>(['init'], withFile, { cwd: ws.dir });
  assert.match(String(first.adminKey), /^pcl_/);
  assert.ok(!existsSync(join(ws.dataDir, 'secret.key')), 'no secret.key is generated when the secret is configured');

  // The same secret given directly (the file's trailing newline is not part of it) opens the store.
  const same = await runCliJson<{ adminKey: string | null }>(['init'], { ...ws.env, PORTCULLIS_SECRET_KEY: ROOT_SECRET }, { cwd: ws.dir });
  assert.equal(same.adminKey, null);

  const otherSecret = 'a-different-root-secret-0123456789abcdef';
  const refused = await runCli(['init', '--json'], { ...ws.env, PORTCULLIS_SECRET_KEY: otherSecret }, { cwd: ws.dir });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /root secret differs/);
  for (const secret of [ROOT_SECRET, otherSecret]) assert.ok(!(refused.stdout + refused.stderr).includes(secret));
  assert.doesNotMatch(refused.stderr, NO_STACK);
});

test('YAML and JSON configuration files both work, and environment variables override them', async (t) => {
  const ws = await createWorkspace(t);
  const yamlFile = join(ws.dir, 'portcullis.yaml');
  writeFileSync(yamlFile, ['# YAML, with comments', 'port: 9001', 'logLevel: warn', 'corsOrigins:', '  - https://app.example', 'deliveryRetrySchedule: [1, 2, 3]', ''].join('\n'));
  const fromYaml = await runCliJson(['config', 'print', '--config', yamlFile], { PORTCULLIS_PORT: '9002' }, { cwd: ws.dir });
  assert.equal(fromYaml.port, 9002, 'the environment wins over the file');
  assert.equal(fromYaml.logLevel, 'warn');
  assert.deepEqual(fromYaml.corsOrigins, ['https://app.example']);
  assert.deepEqual(fromYaml.deliveryRetrySchedule, [1, 2, 3]);

  const jsonFile = join(ws.dir, 'portcullis.json');
  writeFileSync(jsonFile, JSON.stringify({ host: '0.0.0.0', bodyLimit: 2048, ssrfAllow: ['10.0.0.0/8'], deliveryRetrySchedule: [5, 10] }));
  const fromJson = await runCliJson(['config', 'print'], { PORTCULLIS_CONFIG: jsonFile, PORTCULLIS_SSRF_ALLOW: '192.168.0.0/16, 127.0.0.1/32' }, { cwd: ws.dir });
  assert.equal(fromJson.host, '0.0.0.0');
  assert.equal(fromJson.bodyLimit, 2048);
  assert.deepEqual(fromJson.ssrfAllow, ['192.168.0.0/16', '127.0.0.1/32']);
  assert.deepEqual(fromJson.deliveryRetrySchedule, [5, 10]);

  // Types in a file are not coerced: "5" is not 5.
  writeFileSync(jsonFile, JSON.stringify({ port: '8080' }));
  const wrongType = await runCli(['config', 'print'], { PORTCULLIS_CONFIG: jsonFile }, { cwd: ws.dir });
  assert.notEqual(wrongType.code, 0);
  assert.match(wrongType.stderr, /port \(PORTCULLIS_PORT\): must be integer/);
});

test('serve takes its settings from a configuration file', async (t) => {
  const ws = await createWorkspace(t);
  const dataDir = join(ws.dir, 'from-file');
  const file = join(ws.dir, 'portcullis.yaml');
  writeFileSync(file, [`dataDir: ${JSON.stringify(dataDir)}`, `databaseUrl: ${JSON.stringify(ws.databaseUrl.startsWith('sqlite:') ? `sqlite:${dataDir}/portcullis.db` : ws.databaseUrl)}`, `databaseSchema: ${ws.databaseSchema}`, 'logLevel: warn', ''].join('\n'));
  const server = await startServe(t, { workspace: { ...ws, env: { PORTCULLIS_CONFIG: file } } });
  const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  const res = await httpRequest(`${server.url}/v1/keys`, { key: adminKey });
  assert.equal(res.status, 200);
  assert.equal((await server.stop()).code, 0);
  assert.doesNotMatch(server.output(), /"level":30/, 'logLevel warn from the file silences info lines');
  assert.ok(!existsSync(join(ws.dataDir, 'admin.key')), 'the default data folder is not used');
});

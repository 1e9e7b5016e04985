'use strict';
// Step 3: the BrickferryTools task downloaded from the organization, against a
// local server that imitates the distributedtask route the agent uses
// (GET {collection}_apis/distributedtask/tasks/{id}/{version}, Accept:
// application/zip, the job token), plus a second host, a proxy and TLS.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const launcher = require('../launcher');
const toolcache = require('../toolcache');
const { agent, fakeExe, toolsFiles, zip, tmpdir, completes, TOOLS_ID, KEY } = require('./helpers');

const TOKEN = 'job-token-0123456789';
const posix = process.platform !== 'win32';

function listen(t, server, host = '127.0.0.1') {
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      t.after(() => server.close());
      resolve(server.address().port);
    });
  });
}

// orgServer serves BrickferryTools versions as task zips under /org/.
// maxApiVersion imitates an older Azure DevOps Server: a request for a newer
// api-version gets 400 VssVersionOutOfRangeException.
async function orgServer(t, { versions, listed, redirectZipTo, server, maxApiVersion } = {}) {
  const log = [];
  const handler = (req, res) => {
    const u = new URL(req.url, 'http://x');
    log.push({ method: req.method, path: u.pathname, query: u.search, auth: req.headers.authorization, accept: req.headers.accept });
    const asked = /api-version=(\d+\.\d+)/.exec(req.headers.accept || '');
    if (maxApiVersion && asked && Number(asked[1]) > maxApiVersion) {
      res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({
        typeKey: 'VssVersionOutOfRangeException',
        message: `VS403110: The requested REST API version of ${asked[1]} is out of range for this server. The latest REST API version this server supports is ${maxApiVersion}.`,
      }));
      return;
    }
    const m = u.pathname.match(/^\/org\/_apis\/distributedtask\/tasks\/([0-9a-f-]+)(?:\/(\d+\.\d+\.\d+))?$/);
    if (!m || m[1] !== TOOLS_ID) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"message":"TF400813: not authorized"}');
      return;
    }
    if (!m[2]) {
      const value = (listed || Object.keys(versions)).map((v) => {
        const [major, minor, patch] = v.split('.').map(Number);
        return { id: TOOLS_ID, name: 'BrickferryTools', version: { major, minor, patch, isTest: false } };
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ count: value.length, value }));
      return;
    }
    const body = versions[m[2]];
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"task version not found"}');
      return;
    }
    if (redirectZipTo) {
      res.writeHead(302, { Location: redirectZipTo(m[2]) }).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/zip' }).end(body);
  };
  const srv = server || http.createServer();
  srv.on('request', handler);
  const port = await listen(t, srv);
  return { log, port };
}

function toolsZip(exe, version) {
  return zip(toolsFiles(exe, version));
}

function downloadEnv(a, base) {
  return {
    ...a.env,
    BRICKFERRY_NO_DOWNLOAD: '',
    SYSTEM_TASKDEFINITIONSURI: base,
    ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: TOKEN,
  };
}

async function resolve(a, env) {
  const lines = [];
  try {
    const r = await launcher.resolveExecutable({ config: a.config, env, taskDir: a.taskDir, key: KEY, arch: process.arch, log: (l) => lines.push(l) });
    return { ...r, lines };
  } catch (err) {
    return { error: err, lines };
  }
}

test('download: the pinned version with the job token, then installed in the tool cache', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') } });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ifError(r.error);
  assert.equal(r.source, 'download');
  assert.deepEqual(org.log, [{ method: 'GET', path: `/org/_apis/distributedtask/tasks/${TOOLS_ID}/1.0.0`, query: '', auth: `Bearer ${TOKEN}`, accept: 'application/zip;api-version=7.2-preview.1' }]);
  assert.ok(fs.existsSync(toolcache.cachePaths(a.toolsRoot, '1.0.0', process.arch, KEY).marker));
  assert.ok(!r.lines.join('\n').includes(TOKEN));
});

test('download end to end: the launcher process downloads, runs brickferry and never prints the token', { skip: !posix }, async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') } });
  // no SYSTEM_TASKDEFINITIONSURI: the collection URI is used
  const env = { ...downloadEnv(a, ''), SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: `http://127.0.0.1:${org.port}/org` };
  const child = spawn(process.execPath, [path.join(a.taskDir, 'index.js')], { env });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((res) => child.on('exit', res));
  assert.equal(code, 0);
  assert.match(out, /Downloading the BrickferryTools task 1\.0\.0 from http:\/\/127\.0\.0\.1/);
  assert.match(out, /task=DatabricksTrain/);
  assert.deepEqual(completes(out), ['Succeeded']);
  assert.ok(!out.includes(TOKEN));
});

test('download: 401 is reported and the task asks for the Install Brickferry tools step', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') } });
  const env = { ...downloadEnv(a, `http://127.0.0.1:${org.port}/org/`), ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: 'expired' };
  let out = '';
  await launcher.main({ env, taskDir: a.taskDir, out: { write: (s) => { out += s; } } });
  assert.match(out, /download: the organization refused the job token \(HTTP 401\)/);
  assert.match(out, /##vso\[task\.issue type=error;\].*Add the "Install Brickferry tools" step/);
  assert.deepEqual(completes(out), ['Failed']);
  assert.ok(!out.includes('expired'));
});

test('download: 404 for the pinned version → the newest version of the same major, when its hash matches', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, {
    versions: { '1.2.0': toolsZip(fakeExe('old'), '1.2.0'), '1.10.1': toolsZip(a.exe, '1.10.1'), '2.0.0': toolsZip(fakeExe('v2'), '2.0.0') },
  });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ifError(r.error);
  assert.equal(r.source, 'download');
  assert.deepEqual(org.log.map((l) => l.path + l.query), [
    `/org/_apis/distributedtask/tasks/${TOOLS_ID}/1.0.0`,
    `/org/_apis/distributedtask/tasks/${TOOLS_ID}?allversions=true`,
    `/org/_apis/distributedtask/tasks/${TOOLS_ID}/1.10.1`,
  ]);
});

test('download: the newest same-major version with another executable is refused', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.3.0': toolsZip(fakeExe('different'), '1.3.0') } });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ok(r.error instanceof launcher.NotFoundError);
  assert.match(r.error.tried.join('\n'), /download: BrickferryTools 1\.3\.0 carries a .* executable with sha256 [0-9a-f]{64}, this task was built for/);
  assert.ok(!fs.existsSync(path.join(a.toolsRoot, 'brickferry')));
});

test('download: no version of the same major left', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '2.0.0': toolsZip(a.exe, '2.0.0') } });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.match(r.error.tried.join('\n'), /BrickferryTools 1\.0\.0 is not on the organization and no other 1\.x version is/);
});

test('download: a redirect to another host is followed without the job token', async (t) => {
  const a = agent(t);
  const blobLog = [];
  const blob = http.createServer((req, res) => {
    blobLog.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { 'Content-Type': 'application/zip' }).end(toolsZip(a.exe, '1.0.0'));
  });
  const blobPort = await listen(t, blob);
  const org = await orgServer(t, {
    versions: { '1.0.0': Buffer.from('x') },
    // 127.0.0.1 and localhost are different origins for the token rule
    redirectZipTo: (v) => `http://localhost:${blobPort}/container/tools-${v}.zip?sig=signed`,
  });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ifError(r.error);
  assert.equal(org.log[0].auth, `Bearer ${TOKEN}`);
  assert.deepEqual(blobLog, [{ url: '/container/tools-1.0.0.zip?sig=signed', auth: undefined }]);
});

test('download: a redirect within the organization keeps the token', async (t) => {
  const a = agent(t);
  let port;
  const org = await orgServer(t, {
    versions: { '1.0.0': Buffer.from('x') },
    redirectZipTo: () => `http://127.0.0.1:${port}/org/_apis/distributedtask/tasks/${TOOLS_ID}/1.0.0-real`,
  });
  port = org.port;
  // the route above answers 404 for "1.0.0-real"; serve it from a second handler
  const zipBody = toolsZip(a.exe, '1.0.0');
  const srvLog = [];
  const same = http.createServer((req, res) => {
    srvLog.push(req.headers.authorization);
    if (req.url.endsWith('/1.0.0')) res.writeHead(307, { Location: '/org/real.zip' }).end();
    else res.writeHead(200).end(zipBody);
  });
  const samePort = await listen(t, same);
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${samePort}/org/`));
  assert.ifError(r.error);
  assert.deepEqual(srvLog, [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
});

// proxyServer is a forward proxy: absolute-form GETs and CONNECT tunnels.
async function proxyServer(t) {
  const log = [];
  const proxy = http.createServer((req, res) => {
    log.push({ method: req.method, url: req.url, auth: req.headers['proxy-authorization'] });
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request(req.url, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    up.end();
  });
  proxy.on('connect', (req, socket, head) => {
    log.push({ method: 'CONNECT', url: req.url, auth: req.headers['proxy-authorization'] });
    const [host, port] = req.url.split(':');
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  const port = await listen(t, proxy);
  return { log, port };
}

test('download through the agent proxy (AGENT_PROXYURL, user and secret password, bypass list)', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') } });
  const proxy = await proxyServer(t);
  const base = `http://127.0.0.1:${org.port}/org/`;
  const env = {
    ...downloadEnv(a, base),
    AGENT_PROXYURL: `http://127.0.0.1:${proxy.port}`,
    AGENT_PROXYUSERNAME: 'proxyuser',
    SECRET_AGENT_PROXYPASSWORD: 'proxy-pass',
  };
  const r = await resolve(a, env);
  assert.ifError(r.error);
  const basic = `Basic ${Buffer.from('proxyuser:proxy-pass').toString('base64')}`;
  assert.deepEqual(proxy.log, [{ method: 'GET', url: `${base}_apis/distributedtask/tasks/${TOOLS_ID}/1.0.0`, auth: basic }]);
  assert.equal(org.log[0].auth, `Bearer ${TOKEN}`);

  // bypassed: straight to the organization
  const b = agent(t);
  const r2 = await resolve(b, { ...downloadEnv(b, base), AGENT_PROXYURL: env.AGENT_PROXYURL, AGENT_PROXYBYPASSLIST: JSON.stringify(['127\\.0\\.0\\.1']) });
  assert.ifError(r2.error);
  assert.equal(proxy.log.length, 1);
});

const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

test('download over https through a CONNECT proxy, trusting the agent CA (AGENT_CAINFO)', { skip: !haveOpenssl && 'needs openssl to make a test certificate' }, async (t) => {
  const dir = tmpdir(t);
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '2'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const a = agent(t);
  const org = await orgServer(t, {
    versions: { '1.0.0': toolsZip(a.exe, '1.0.0') },
    server: https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }),
  });
  const proxy = await proxyServer(t);
  const base = `https://localhost:${org.port}/org/`;
  const env = { ...downloadEnv(a, base), AGENT_PROXYURL: `http://127.0.0.1:${proxy.port}` };

  // without the agent's CA the self-signed organization is refused
  const refused = await resolve(a, env);
  assert.match(refused.error.tried.join('\n'), /download: .*(self-signed|self signed)/);

  const r = await resolve(a, { ...env, AGENT_CAINFO: cert });
  assert.ifError(r.error);
  assert.deepEqual(proxy.log.map((l) => `${l.method} ${l.url}`), [`CONNECT localhost:${org.port}`, `CONNECT localhost:${org.port}`]);
  assert.equal(org.log.at(-1).auth, `Bearer ${TOKEN}`);
});

test('BRICKFERRY_NO_DOWNLOAD=true sends no request', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') } });
  const r = await resolve(a, { ...downloadEnv(a, `http://127.0.0.1:${org.port}/org/`), BRICKFERRY_NO_DOWNLOAD: 'true' });
  assert.ok(r.error);
  assert.deepEqual(org.log, []);
});

test('download: an older server that refuses api-version 7.2 (400) is asked again with 5.0-preview.1', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') }, maxApiVersion: 5.0 });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ifError(r.error);
  assert.equal(r.source, 'download');
  assert.deepEqual(org.log.map((l) => l.accept), ['application/zip;api-version=7.2-preview.1', 'application/zip;api-version=5.0-preview.1']);
});

test('download: a 400 with the oldest api-version is an error, not a loop', async (t) => {
  const a = agent(t);
  const org = await orgServer(t, { versions: { '1.0.0': toolsZip(a.exe, '1.0.0') }, maxApiVersion: 4.1 });
  const r = await resolve(a, downloadEnv(a, `http://127.0.0.1:${org.port}/org/`));
  assert.ok(r.error);
  assert.equal(org.log.length, 2);
  assert.match(r.error.tried.join('\n'), /download: HTTP 400/);
});

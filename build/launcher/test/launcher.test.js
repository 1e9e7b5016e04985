'use strict';
// The launcher end to end in an agent-like layout (tasks folder, tool cache,
// temp folder), with a shell script standing in for brickferry.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const toolcache = require('../toolcache');
const { agent, fakeExe, runNode, completes, chmodTree, KEY } = require('./helpers');

const posix = process.platform !== 'win32';

test('step 1: a verified executable in the tool cache is used', { skip: !posix }, (t) => {
  const a = agent(t);
  toolcache.install({ roots: [a.toolsRoot], version: '1.0.0', arch: process.arch, key: KEY, sha256: a.config.sha256[KEY], data: a.exe });
  const r = runNode(path.join(a.taskDir, 'index.js'), { ...a.env, INPUT_MODELNAME: 'churn', SYSTEM_DEBUG: 'true' });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /from the tool cache/);
  assert.match(r.stdout, /task=DatabricksTrain input=churn/);
  assert.deepEqual(completes(r.stdout), ['Succeeded']);
});

test('step 2: the BrickferryTools folder in the same job is installed into the cache, then the cache is used', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true });
  const first = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /from the BrickferryTools task in this job/);
  assert.deepEqual(completes(first.stdout), ['Succeeded']);
  const p = toolcache.cachePaths(a.toolsRoot, '1.0.0', process.arch, KEY);
  assert.ok(fs.existsSync(p.marker));
  const second = runNode(path.join(a.taskDir, 'index.js'), { ...a.env, SYSTEM_DEBUG: 'true' });
  assert.match(second.stdout, /from the tool cache/);
  assert.deepEqual(completes(second.stdout), ['Succeeded']);
});

test('step 2 takes another BrickferryTools version in the job when it carries the pinned executable', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true, toolsVersion: '1.4.0' });
  const r = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.deepEqual(completes(r.stdout), ['Succeeded']);
});

test('a hash mismatch is refused: a tampered cache entry and a different BrickferryTools build', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true, toolsExe: fakeExe('another build') });
  const p = toolcache.cachePaths(a.toolsRoot, '1.0.0', process.arch, KEY);
  fs.mkdirSync(p.dir, { recursive: true });
  fs.writeFileSync(p.exe, fakeExe('tampered'), { mode: 0o755 });
  fs.writeFileSync(p.marker, 'x');
  const r = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /does not have the expected sha256/);
  assert.match(r.stdout, /refused, its .* executable has sha256/);
  assert.doesNotMatch(r.stdout, /task=DatabricksTrain/);
  assert.deepEqual(completes(r.stdout), ['Failed']);
});

test('step 4: nothing found is one clear error asking for the Install Brickferry tools step', { skip: !posix }, (t) => {
  const a = agent(t);
  const r = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.equal(r.code, 0);
  const issues = [...r.stdout.matchAll(/##vso\[task\.issue type=error;\](.*)/g)].map((m) => m[1]);
  assert.equal(issues.length, 1);
  assert.match(issues[0], /Add the "Install Brickferry tools" step \(BrickferryTools@1\) before this step/);
  assert.match(r.stdout, /download: turned off by BRICKFERRY_NO_DOWNLOAD=true/);
  assert.deepEqual(completes(r.stdout), ['Failed']);
});

test('read-only tasks folder and tool cache: the executable is installed into the agent temp folder', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true });
  chmodTree(path.join(a.tasks), false);
  // A file where the tool cache folder would be: unwritable even when the
  // tests run as root (permission bits do not stop root).
  fs.rmSync(a.toolsRoot, { recursive: true });
  fs.writeFileSync(a.toolsRoot, 'read-only mount');
  const r = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Installed brickferry .*${a.temp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.deepEqual(completes(r.stdout), ['Succeeded']);
  // the next task in the job finds it there
  const again = runNode(path.join(a.taskDir, 'index.js'), { ...a.env, SYSTEM_DEBUG: 'true' });
  assert.match(again.stdout, /from the tool cache/);
});

test('the same environment reaches brickferry, and secrets are not printed', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true });
  const r = runNode(path.join(a.taskDir, 'index.js'), {
    ...a.env, INPUT_MODELNAME: 'm1', SECRET_TOKEN: 'sEcReT-123', ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN: 'job-token-xyz',
  });
  assert.match(r.stdout, /input=m1 secretlen=10/);
  assert.doesNotMatch(r.stdout + r.stderr, /sEcReT-123|job-token-xyz/);
});

test('a crash or a non-zero exit becomes task.issue error + task.complete Failed, and the launcher exits 0', { skip: !posix }, (t) => {
  const a = agent(t, { withTools: true });
  const r = runNode(path.join(a.taskDir, 'index.js'), { ...a.env, FAKE_MODE: 'crash' });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /##vso\[task\.issue type=error;\]brickferry DatabricksTrain exited with code 2 before it reported a result/);
  assert.deepEqual(completes(r.stdout), ['Failed']);
});

test('an executable that cannot start is a failed task, not a launcher crash', { skip: !posix }, (t) => {
  const a = agent(t, { exe: Buffer.from('\x7fELF not really an executable') , withTools: true });
  const r = runNode(path.join(a.taskDir, 'index.js'), a.env);
  assert.equal(r.code, 0);
  // libuv hands ENOEXEC to /bin/sh (exit 127); either way it is one error and Failed.
  assert.match(r.stdout, /##vso\[task\.issue type=error;\](Could not start brickferry for DatabricksTrain|brickferry DatabricksTrain exited with code 127)/);
  assert.deepEqual(completes(r.stdout), ['Failed']);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  test(`${sig} is forwarded to brickferry and the launcher still exits 0`, { skip: !posix, timeout: 30_000 }, async (t) => {
    const a = agent(t, { withTools: true });
    // In a process group of its own, so that a failed run leaves no fake
    // brickferry behind holding the output pipe (the test file would never end).
    const child = spawn(process.execPath, [path.join(a.taskDir, 'index.js')], { env: { ...a.env, FAKE_MODE: 'wait' }, detached: true });
    t.after(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } });
    let out = '';
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('fake ready')) resolve();
      });
    });
    child.kill(sig);
    const { code, signal } = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.match(out, new RegExp(`fake got ${sig.slice(3)}`));
    assert.deepEqual(completes(out), ['Canceled']);
  });
}

// A stand-in for child_process.spawn: records kill() and exits when told.
function fakeSpawn() {
  const { EventEmitter } = require('events');
  const child = new EventEmitter();
  child.kills = [];
  child.kill = (sig) => { child.kills.push(sig); };
  return { child, spawnFn: () => child };
}

test('on Windows the cancel is not forwarded: child.kill would end brickferry at once, and the console Ctrl+C reaches it anyway', async () => {
  const { runChild } = require('../launcher');
  const { child, spawnFn } = fakeSpawn();
  const running = runChild('brickferry', ['DatabricksTrain'], {}, { platform: 'win32', spawnFn });
  process.emit('SIGINT', 'SIGINT');
  process.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(child.kills, []);
  child.emit('exit', 0, null);
  const r = await running;
  assert.equal(r.signalled, 'SIGINT');
  assert.equal(r.forwarded, false);
  assert.equal(process.listenerCount('SIGINT'), 0, 'the handlers are removed');
});

test('on Linux and macOS the cancel is forwarded to brickferry', async () => {
  const { runChild } = require('../launcher');
  for (const platform of ['linux', 'darwin']) {
    const { child, spawnFn } = fakeSpawn();
    const running = runChild('brickferry', ['DatabricksTrain'], {}, { platform, spawnFn });
    process.emit('SIGINT', 'SIGINT');
    child.emit('exit', 0, null);
    const r = await running;
    assert.deepEqual(child.kills, ['SIGINT'], platform);
    assert.equal(r.forwarded, true);
  }
});

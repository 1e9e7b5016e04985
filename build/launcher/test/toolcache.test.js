'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const toolcache = require('../toolcache');
const { tmpdir, fakeExe, sha256, KEY } = require('./helpers');

function pinned(exe) {
  return { version: '1.0.0', arch: process.arch, key: KEY, sha256: sha256(exe) };
}

test('install stages, renames and writes the marker last', (t) => {
  const root = tmpdir(t);
  const exe = fakeExe();
  const p = toolcache.cachePaths(root, '1.0.0', process.arch, KEY);
  const got = toolcache.install({ roots: [root], ...pinned(exe), data: exe });
  assert.equal(got, p.exe);
  assert.deepEqual(fs.readFileSync(got), exe);
  assert.ok(fs.existsSync(p.marker));
  assert.equal(fs.statSync(got).mode & 0o777, 0o755);
  // nothing staged is left beside the folder
  assert.deepEqual(fs.readdirSync(path.dirname(p.dir)).sort(), [process.arch, `${process.arch}.complete`].sort());
  const hit = toolcache.findInCache({ root, ...pinned(exe) });
  assert.equal(hit.exe, p.exe);
});

test('the cache is a miss without the marker or with another hash', (t) => {
  const root = tmpdir(t);
  const exe = fakeExe();
  const p = toolcache.cachePaths(root, '1.0.0', process.arch, KEY);
  fs.mkdirSync(p.dir, { recursive: true });
  fs.writeFileSync(p.exe, exe);
  assert.match(toolcache.findInCache({ root, ...pinned(exe) }).miss, /not installed/);
  fs.writeFileSync(p.marker, 'x');
  assert.equal(toolcache.findInCache({ root, ...pinned(exe) }).exe, p.exe);
  fs.writeFileSync(p.exe, fakeExe('tampered'));
  assert.match(toolcache.findInCache({ root, ...pinned(exe) }).miss, /expected sha256/);
});

test('a hash mismatch is refused before anything is written', (t) => {
  const root = tmpdir(t);
  const exe = fakeExe();
  assert.throws(() => toolcache.install({ roots: [root], ...pinned(exe), data: fakeExe('other') }),
    toolcache.HashMismatchError);
  assert.deepEqual(fs.readdirSync(root), []);
});

test('a folder left without its marker (a crashed job) is replaced', (t) => {
  const root = tmpdir(t);
  const exe = fakeExe();
  const p = toolcache.cachePaths(root, '1.0.0', process.arch, KEY);
  fs.mkdirSync(p.dir, { recursive: true });
  fs.writeFileSync(p.exe, exe.subarray(0, 10)); // half a file from an older, non-atomic writer
  toolcache.install({ roots: [root], ...pinned(exe), data: exe });
  assert.deepEqual(fs.readFileSync(p.exe), exe);
  assert.ok(fs.existsSync(p.marker));
});

test('concurrent installers on one machine all end with one complete executable', async (t) => {
  const root = tmpdir(t);
  const exe = Buffer.concat([fakeExe(), Buffer.alloc(8 << 20, 1)]);
  const { fork } = require('child_process');
  const script = path.join(root, 'inst.js');
  fs.writeFileSync(script, `const tc=require(${JSON.stringify(path.resolve(__dirname, '../toolcache'))});
    const fs=require('fs'); const data=fs.readFileSync(process.argv[2]);
    const out=tc.install({roots:[process.argv[3]],version:'1.0.0',arch:process.arch,key:${JSON.stringify(KEY)},sha256:process.argv[4],data});
    process.send(out);`);
  const src = path.join(root, 'src.bin');
  fs.writeFileSync(src, exe);
  const cache = path.join(root, 'cache');
  const runs = Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
    const c = fork(script, [src, cache, sha256(exe)], { stdio: 'inherit' });
    let got;
    c.on('message', (m) => { got = m; });
    c.on('exit', (code) => (code === 0 ? resolve(got) : reject(new Error(`installer exited ${code}`))));
  }));
  const paths = await Promise.all(runs);
  assert.equal(new Set(paths).size, 1);
  assert.equal(sha256(fs.readFileSync(paths[0])), sha256(exe));
  const left = fs.readdirSync(path.join(cache, 'brickferry', '1.0.0')).sort();
  assert.deepEqual(left, [process.arch, `${process.arch}.complete`].sort());
});

test('an unwritable tool cache falls back to the next root (the agent temp folder)', (t) => {
  const dir = tmpdir(t);
  const exe = fakeExe();
  // A file where the tool cache should be: unwritable even for root, like a
  // read-only mount in a container job.
  const blocked = path.join(dir, 'tools');
  fs.writeFileSync(blocked, 'not a folder');
  const temp = path.join(dir, 'temp');
  const got = toolcache.install({ roots: [blocked, temp], ...pinned(exe), data: exe });
  assert.ok(got.startsWith(temp));
  assert.throws(() => toolcache.install({ roots: [blocked], ...pinned(exe), data: exe }), /could not write the executable/);
});

test('ensureRunnable sets the executable bit, or copies to the temp folder when it cannot', { skip: process.platform === 'win32' }, (t) => {
  const dir = tmpdir(t);
  const exe = fakeExe();
  const file = path.join(dir, 'brickferry');
  fs.writeFileSync(file, exe, { mode: 0o644 });
  assert.equal(toolcache.ensureRunnable(file, exe, dir, KEY), file);
  assert.equal(fs.statSync(file).mode & 0o111, 0o111);

  const ro = path.join(dir, 'ro-brickferry');
  fs.writeFileSync(ro, exe, { mode: 0o444 });
  const temp = path.join(dir, 'temp');
  const denied = () => { throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }); };
  const copy = toolcache.ensureRunnable(ro, exe, temp, KEY, denied);
  assert.ok(copy.startsWith(temp));
  assert.equal(fs.statSync(copy).mode & 0o111, 0o111);
  assert.deepEqual(fs.readFileSync(copy), exe);
});

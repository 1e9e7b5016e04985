'use strict';
// Test helpers: an agent-like folder layout (tasks folder, tool cache, temp),
// packaged the way build/package packages the tasks, and a tiny zip writer for
// the organization's task download.

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const { platformKey } = require('../platform');

const LAUNCHER_DIR = path.resolve(__dirname, '..');
const TOOLS_ID = 'b270e2a7-15b3-4c74-b73d-494324b41029';
const TASK_ID = '9915cf49-7c1d-4918-8dbe-2eec195026c4';
const KEY = platformKey();

// Module files shared by both entry points (launcher.js → thin tasks'
// index.js, install.js → BrickferryTools' index.js).
function moduleFiles() {
  return fs.readdirSync(LAUNCHER_DIR).filter((f) => f.endsWith('.js') && f !== 'launcher.js' && f !== 'install.js');
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brickferry-launcher-'));
  t.after(() => {
    chmodTree(dir, true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function chmodTree(dir, writable) {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chmodTree(p, writable);
    else fs.chmodSync(p, writable ? 0o755 : 0o555);
  }
  fs.chmodSync(dir, writable ? 0o755 : 0o555);
}

// fakeExe is a shell script standing in for brickferry: it reports like the real
// one and behaves according to FAKE_MODE.
function fakeExe(tag = 'v1') {
  return Buffer.from(`#!/bin/sh
# fake brickferry ${tag}
if [ "$1" = version ]; then echo "brickferry 1.0.0-fake"; exit 0; fi
case "$FAKE_MODE" in
  crash) echo "panic: boom" >&2; exit 2 ;;
  wait)
    trap 'echo "fake got INT"; exit 130' INT
    trap 'echo "fake got TERM"; exit 143' TERM
    echo "fake ready"
    while :; do sleep 0.05; done ;;
esac
echo "task=$1 input=$INPUT_MODELNAME secretlen=\${#SECRET_TOKEN}"
echo "##vso[task.complete result=Succeeded;]ran $1"
`);
}

function compress(data, quality = 4) {
  return zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality } });
}

// toolsFiles returns the BrickferryTools task files (relative path → Buffer).
function toolsFiles(exe, version = '1.0.0', key = KEY) {
  const files = {};
  for (const f of moduleFiles()) files[f] = fs.readFileSync(path.join(LAUNCHER_DIR, f));
  files['index.js'] = fs.readFileSync(path.join(LAUNCHER_DIR, 'install.js'));
  files[`bin/${key}/brickferry.br`] = compress(exe);
  files['bin/manifest.json'] = Buffer.from(JSON.stringify({
    tool: 'brickferry', version,
    platforms: { [key]: { file: `bin/${key}/brickferry.br`, sha256: sha256(exe), size: exe.length } },
  }));
  return files;
}

function writeFiles(dir, files) {
  for (const [name, data] of Object.entries(files)) {
    const p = path.join(dir, ...name.split('/'));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
  }
}

// agent lays out <root>/_tasks/<Name>_<id>/<version>/ like the agent does, a
// tool cache and a temp folder. It returns paths and a base environment.
function agent(t, { exe = fakeExe(), withTools = false, toolsExe, toolsVersion = '1.0.0', task = 'DatabricksTrain' } = {}) {
  const root = tmpdir(t);
  const tasks = path.join(root, '_tasks');
  const taskDir = path.join(tasks, `${task}_${TASK_ID}`, '1.0.0');
  const config = {
    task, version: '1.0.0',
    tools: { id: TOOLS_ID, name: 'BrickferryTools', version: '1.0.0' },
    sha256: { [KEY]: sha256(exe) },
  };
  const files = { 'index.js': fs.readFileSync(path.join(LAUNCHER_DIR, 'launcher.js')), 'launcher.json': JSON.stringify(config) };
  for (const f of moduleFiles()) files[f] = fs.readFileSync(path.join(LAUNCHER_DIR, f));
  writeFiles(taskDir, files);
  let toolsDir = null;
  if (withTools) {
    toolsDir = path.join(tasks, `BrickferryTools_${TOOLS_ID}`, toolsVersion);
    writeFiles(toolsDir, toolsFiles(toolsExe || exe, toolsVersion));
    fs.writeFileSync(`${toolsDir}.completed`, 'now');
  }
  const toolsRoot = path.join(root, '_tool');
  const temp = path.join(root, '_temp');
  fs.mkdirSync(toolsRoot);
  fs.mkdirSync(temp);
  const env = {
    PATH: process.env.PATH,
    AGENT_TOOLSDIRECTORY: toolsRoot,
    AGENT_TEMPDIRECTORY: temp,
    BRICKFERRY_NO_DOWNLOAD: 'true',
  };
  return { root, tasks, taskDir, toolsDir, toolsRoot, temp, config, env, exe };
}

// Output of a spawned task.
function runNode(script, env, { timeout = 30_000 } = {}) {
  const { spawnSync } = require('child_process');
  const r = spawnSync(process.execPath, [script], { env, encoding: 'utf8', timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function completes(stdout) {
  return [...stdout.matchAll(/##vso\[task\.complete result=([A-Za-z]+);\]/g)].map((m) => m[1]);
}

// --- zip writer (stored entries), enough to imitate the task download ---
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// writeEntryFields writes the fields a local file header and its central
// directory header share, in the same order, from `at` (4 in a local header,
// 6 in a central one): version needed to extract (2.0), method, CRC-32,
// compressed and uncompressed size, file name length (APPNOTE.TXT 4.3.7,
// 4.3.12). Flags, times, extra fields and comments stay zero.
function writeEntryFields(buf, at, { method, crc, compressed, size, nameLength }) {
  buf.writeUInt16LE(20, at);
  buf.writeUInt16LE(method, at + 4);
  buf.writeUInt32LE(crc, at + 10);
  buf.writeUInt32LE(compressed, at + 14);
  buf.writeUInt32LE(size, at + 18);
  buf.writeUInt16LE(nameLength, at + 22);
}

function zip(files, { deflate = true } = {}) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, raw] of Object.entries(files)) {
    const data = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    const body = deflate ? zlib.deflateRawSync(data) : data;
    const method = deflate ? 8 : 0;
    const n = Buffer.from(name);
    const crc = crc32(data);
    const entry = { method, crc, compressed: body.length, size: data.length, nameLength: n.length };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    writeEntryFields(local, 4, entry);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    writeEntryFields(central, 6, entry);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, body);
    centrals.push(central, n);
    offset += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

module.exports = {
  LAUNCHER_DIR, TOOLS_ID, TASK_ID, KEY, moduleFiles, sha256, tmpdir, chmodTree, fakeExe, compress,
  toolsFiles, writeFiles, agent, runNode, completes, zip, crc32,
};

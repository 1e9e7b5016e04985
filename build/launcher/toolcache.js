'use strict';
// The brickferry executable in the agent tool cache, laid out like
// azure-pipelines-tool-lib does it: <root>/brickferry/<version>/<arch>/ with an
// <arch>.complete marker beside the folder. A folder is staged under a unique
// name and renamed into place whole, and the marker is written last (itself
// through a rename), so a job running beside us on the same machine sees either
// nothing or a complete, verified executable.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { exeName } = require('./platform');

const TOOL = 'brickferry';

class HashMismatchError extends Error {}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function cachePaths(root, version, arch, key) {
  const dir = path.join(root, TOOL, version, arch);
  return { dir, marker: `${dir}.complete`, exe: path.join(dir, exeName(key)) };
}

// verifiedRead returns the file's bytes when their sha256 is want, else null.
function verifiedRead(file, want) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch {
    return null;
  }
  return sha256(data) === want ? data : null;
}

// findInCache returns {exe, data} for a complete cache entry whose executable
// has the pinned hash, or {miss: reason}.
function findInCache({ root, version, arch, key, sha256: want }) {
  if (!root) return { miss: 'AGENT_TOOLSDIRECTORY is not set' };
  const p = cachePaths(root, version, arch, key);
  if (!fs.existsSync(p.marker)) return { miss: `${p.dir} is not installed` };
  const data = verifiedRead(p.exe, want);
  if (!data) return { miss: `${p.exe} does not have the expected sha256` };
  return { exe: p.exe, data };
}

function unique() {
  return `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

function writeMarker(marker) {
  const tmp = `${marker}.${unique()}.tmp`;
  fs.writeFileSync(tmp, `${new Date().toISOString()}\n`);
  fs.renameSync(tmp, marker);
}

// installInto puts verified bytes into one cache root and returns the path of
// the executable. It throws when the root cannot be written.
function installInto({ root, version, arch, key, data, sha256: want }) {
  const p = cachePaths(root, version, arch, key);
  const parent = path.dirname(p.dir);
  fs.mkdirSync(parent, { recursive: true });
  const staging = path.join(parent, `.${arch}.staging-${unique()}`);
  fs.mkdirSync(staging);
  try {
    const staged = path.join(staging, exeName(key));
    fs.writeFileSync(staged, data, { mode: 0o755 });
    fs.chmodSync(staged, 0o755);
    try {
      fs.renameSync(staging, p.dir);
    } catch (err) {
      // Someone else got there first (or left a folder behind without its marker).
      if (verifiedRead(p.exe, want)) {
        writeMarker(p.marker);
        return p.exe;
      }
      const stale = path.join(parent, `.${arch}.stale-${unique()}`);
      try {
        fs.renameSync(p.dir, stale);
        fs.rmSync(stale, { recursive: true, force: true });
      } catch {
        throw err;
      }
      fs.renameSync(staging, p.dir);
    }
    writeMarker(p.marker);
    return p.exe;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

// install verifies data against the pinned hash and caches it in the first
// root that can be written (the tool cache, then the agent's temp folder for
// agents or containers where the tool cache is read-only).
function install({ roots, version, arch, key, data, sha256: want }) {
  const got = sha256(data);
  if (got !== want) {
    throw new HashMismatchError(`sha256 of the ${key} executable is ${got}, expected ${want}`);
  }
  const errors = [];
  for (const root of roots.filter(Boolean)) {
    try {
      return installInto({ root, version, arch, key, data, sha256: want });
    } catch (err) {
      errors.push(`${root}: ${err.code || err.message}`);
    }
  }
  throw new Error(`could not write the executable to any of: ${errors.join('; ') || 'no folder given'}`);
}

// readToolsTask reads the BrickferryTools manifest from a task folder (or from
// the entries of its zip through read) and returns the decompressed executable
// of one platform.
function toolsExecutable(read, key) {
  let manifest;
  try {
    manifest = JSON.parse(read('bin/manifest.json').toString('utf8'));
  } catch (err) {
    throw new Error(`no readable bin/manifest.json (${err.code || err.message})`);
  }
  const entry = manifest.platforms && manifest.platforms[key];
  if (!entry) throw new Error(`the BrickferryTools task has no executable for ${key}`);
  const data = zlib.brotliDecompressSync(read(entry.file));
  return { manifest, entry, data };
}

function fromFolder(dir, key) {
  return toolsExecutable((name) => fs.readFileSync(path.join(dir, ...name.split('/'))), key);
}

// ensureRunnable returns a path to an executable file with these bytes: the
// given one, made executable, or a copy in tempDir when the file cannot be
// changed (read-only task or tool folders in container jobs).
function ensureRunnable(exe, data, tempDir, key, chmod = fs.chmodSync) {
  if (process.platform === 'win32') return exe;
  try {
    if ((fs.statSync(exe).mode & 0o111) === 0o111) return exe;
    chmod(exe, 0o755);
    return exe;
  } catch (err) {
    if (!tempDir) throw err;
    const dir = path.join(tempDir, `brickferry-${sha256(data).slice(0, 16)}`);
    fs.mkdirSync(dir, { recursive: true });
    const copy = path.join(dir, exeName(key));
    const tmp = `${copy}.${unique()}.tmp`;
    fs.writeFileSync(tmp, data, { mode: 0o755 });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, copy);
    return copy;
  }
}

module.exports = {
  sha256, cachePaths, findInCache, install, installInto, toolsExecutable, fromFolder,
  ensureRunnable, verifiedRead, HashMismatchError,
};

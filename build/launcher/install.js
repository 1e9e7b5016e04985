'use strict';
// "Install Brickferry tools" (BrickferryTools@1): copied into the BrickferryTools
// task folder as index.js, beside bin/<goos>-<goarch>/brickferry.br and
// bin/manifest.json ({tool, version, platforms: {<key>: {file, sha256, size}}}).
// It puts the executable for this agent into the tool cache (decompress,
// verify, stage, rename, marker last), prepends its folder to PATH for later
// script steps, sets the brickferryPath output variable, and checks the result
// by running `brickferry version`. It exits 0; the result is in task.complete.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { platformKey } = require('./platform');
const toolcache = require('./toolcache');
const { Writer } = require('./vso');

function main({ env = process.env, taskDir = __dirname, out = process.stdout } = {}) {
  const w = new Writer(out);
  try {
    const key = platformKey();
    const arch = process.arch;
    const manifest = JSON.parse(fs.readFileSync(path.join(taskDir, 'bin', 'manifest.json'), 'utf8'));
    const entry = manifest.platforms[key];
    if (!entry) throw new Error(`this BrickferryTools task carries no executable for ${key}`);
    const pinned = { version: manifest.version, arch, key, sha256: entry.sha256 };
    const roots = [...new Set([env.AGENT_TOOLSDIRECTORY, env.AGENT_TEMPDIRECTORY].filter(Boolean))];
    let exe;
    let data;
    const hit = toolcache.findInCache({ root: env.AGENT_TOOLSDIRECTORY, ...pinned });
    if (hit.exe) {
      ({ exe, data } = hit);
      w.line(`brickferry ${manifest.version} (${key}) is already in the tool cache: ${exe}`);
    } else {
      const start = Date.now();
      ({ data } = toolcache.fromFolder(taskDir, key));
      exe = toolcache.install({ roots, ...pinned, data });
      w.line(`Installed brickferry ${manifest.version} (${key}) in ${Date.now() - start} ms: ${exe}`);
    }
    exe = toolcache.ensureRunnable(exe, data, env.AGENT_TEMPDIRECTORY, key);
    const r = spawnSync(exe, ['version'], { env, encoding: 'utf8', timeout: 60_000, windowsHide: true });
    if (r.error || r.status !== 0) {
      const why = r.error ? r.error.message : `exit code ${r.status}: ${(r.stderr || '').trim()}`;
      throw new Error(`the installed executable does not run on this agent (${why})`);
    }
    w.line(r.stdout.trim());
    w.prependPath(path.dirname(exe));
    w.setVariable('brickferryPath', exe, true);
    w.complete('Succeeded', `brickferry ${manifest.version} is installed`);
  } catch (err) {
    w.error(`Install Brickferry tools failed: ${err.message}`);
    w.complete('Failed', 'brickferry is not installed');
  }
  return 0;
}

module.exports = { main };

if (require.main === module) {
  process.exitCode = main();
}

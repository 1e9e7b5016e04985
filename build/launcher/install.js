'use strict';
// "Install Brickferry tools" (BrickferryTools@1): copied into the BrickferryTools
// task folder as index.js, beside bin/<goos>-<goarch>/brickferry.br and
// bin/manifest.json ({tool, version, platforms: {<key>: {file, sha256, size}}}).
// It puts the executable for this agent into the tool cache (decompress,
// verify, stage, rename, marker last), prepends its folder to PATH for later
// script steps, sets the brickferryPath output variable, and checks the result
// by running `brickferry version`. With the input doctor on, it then runs
// `brickferry doctor` on the step's connection inputs (see doctor below). It
// exits 0; the result is in task.complete.

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
    if (String(env.INPUT_DOCTOR || '').toLowerCase() === 'true') {
      const result = doctor(exe, env, out);
      const message = result === 'Succeeded' ? `brickferry ${manifest.version} is installed; the doctor found nothing wrong`
        : `brickferry ${manifest.version} is installed; see the doctor's findings`;
      w.complete(result, message);
      return 0;
    }
    w.complete('Succeeded', `brickferry ${manifest.version} is installed`);
  } catch (err) {
    w.error(`Install Brickferry tools failed: ${err.message}`);
    w.complete('Failed', 'brickferry is not installed');
  }
  return 0;
}

// doctor runs `brickferry doctor` with this step's inputs (the input doctor
// is on), passes its output through, and returns its result: the doctor
// completes the step itself under the agent, so its task.complete is held
// back and this step completes once, with the doctor's result.
function doctor(exe, env, out) {
  const r = spawnSync(exe, ['doctor'], { env, encoding: 'utf8', timeout: 600_000, windowsHide: true, maxBuffer: 64 << 20 });
  let result = 'Failed';
  for (const line of (r.stdout || '').split(/\r?\n/)) {
    const m = /^##vso\[task\.complete result=(\w+);/.exec(line);
    if (m) {
      result = m[1];
    } else if (line !== '') {
      out.write(line + '\n');
    }
  }
  if (r.error || r.status !== 0) {
    new Writer(out).error(`brickferry doctor did not finish (${r.error ? r.error.message : `exit code ${r.status}: ${(r.stderr || '').trim()}`})`);
    return 'Failed';
  }
  return result;
}

module.exports = { main, doctor };

if (require.main === module) {
  process.exitCode = main();
}

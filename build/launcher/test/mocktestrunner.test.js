'use strict';
// azure-pipelines-task-lib's MockTestRunner runs the packaged tasks the way
// Microsoft tests its own: node <task>/index.js with the agent's environment,
// reading task.complete and task.issue from stdout. The executable is the real
// linux/amd64 brickferry from `make build-host` (dist/bin/linux-amd64/brickferry).
// nodePath is the running Node, so MockTestRunner downloads nothing.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { agent, LAUNCHER_DIR } = require('./helpers');

const EXE = path.resolve(LAUNCHER_DIR, '..', '..', 'dist', 'bin', 'linux-amd64', 'brickferry');
const onHost = process.platform === 'linux' && process.arch === 'x64';
const skip = !onHost ? 'the real executable is linux/amd64'
  : !fs.existsSync(EXE) ? `${EXE} is missing: run make build-host (make test-node does)` : false;

async function runTask(script, env) {
  // Installed in build/devtools (make devtools), not in the root's node_modules.
  const { MockTestRunner } = require(path.join(LAUNCHER_DIR, '..', 'devtools', 'node_modules', 'azure-pipelines-task-lib', 'mock-test'));
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const tr = new MockTestRunner(script);
    tr.nodePath = process.execPath;
    await tr.runAsync();
    return tr;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

test('MockTestRunner: BrickferryTools installs the real executable and succeeds; a thin task runs it', { skip }, async (t) => {
  const exe = fs.readFileSync(EXE);
  const a = agent(t, { exe, withTools: true });
  const env = { ...a.env, AGENT_ID: '1', TF_BUILD: 'True' };

  // success: Install Brickferry tools decompresses, verifies, caches and runs `brickferry version`
  const tools = await runTask(path.join(a.toolsDir, 'index.js'), env);
  assert.ok(tools.succeeded, tools.stdout + tools.stderr);
  assert.deepEqual(tools.errorIssues, []);
  assert.match(tools.stdout, /^brickferry \S+$/m);
  assert.match(tools.stdout, /##vso\[task\.prependpath\].*\/brickferry\/1\.0\.0\/x64/);
  assert.match(tools.stdout, /##vso\[task\.setvariable variable=brickferryPath;isOutput=true;\].*\/brickferry\/1\.0\.0\/x64\/brickferry/);

  // failure: DatabricksTrain with no inputs runs through the launcher (tool
  // cache hit) and the real executable fails the task with an error issue.
  const train = await runTask(path.join(a.taskDir, 'index.js'), { ...env, SYSTEM_DEBUG: 'true' });
  assert.ok(train.failed, train.stdout);
  assert.match(train.stdout, /from the tool cache/);
  assert.ok(train.errorIssues.length >= 1, train.stdout);
  assert.equal((train.stdout.match(/##vso\[task\.complete /g) || []).length, 1, train.stdout);
});

test('MockTestRunner: BrickferryTools with the doctor on runs the real doctor and completes once with its result', { skip }, async (t) => {
  const exe = fs.readFileSync(EXE);
  const a = agent(t, { exe, withTools: true });
  // The doctor checks its inputs before any remote call: the token method
  // without a workspace URL fails the step, with the doctor's own error.
  const env = { ...a.env, AGENT_ID: '1', TF_BUILD: 'True', INPUT_DOCTOR: 'true', INPUT_CONNECTIONMETHOD: 'token', INPUT_TOKEN: 'dapi-x' };
  const tools = await runTask(path.join(a.toolsDir, 'index.js'), env);
  assert.ok(tools.failed, tools.stdout + tools.stderr);
  assert.match(tools.stdout, /##vso\[task\.prependpath\]/, 'installed first');
  assert.ok(tools.errorIssues.some((e) => /workspaceUrl/.test(e)), tools.stdout);
  assert.equal((tools.stdout.match(/##vso\[task\.complete /g) || []).length, 1, tools.stdout);

  // Off (the default): the doctor does not run.
  const off = await runTask(path.join(a.toolsDir, 'index.js'), { ...env, INPUT_DOCTOR: 'false' });
  assert.ok(off.succeeded, off.stdout);
  assert.doesNotMatch(off.stdout, /workspaceUrl/);
});

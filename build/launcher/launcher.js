'use strict';
// Brickferry task launcher: copied into every thin task folder as index.js, with
// a launcher.json written at package time ({task, version, tools: {id, name,
// version}, sha256: {<goos>-<goarch>: hex}}). It finds the brickferry executable
// for this agent, verifies its sha256 against the pin on every use, and runs
// `brickferry <task>` with the agent's environment.
//
// Where the executable comes from, in order:
//  1. the agent tool cache: $AGENT_TOOLSDIRECTORY/brickferry/<version>/<arch>/
//  2. the BrickferryTools task folder, when that task is in the same job (the
//     agent extracts it beside this one: <tasks>/<Name>_<id>/<version>/)
//  3. the BrickferryTools task downloaded from the organization, the request the
//     agent makes for any task (off with BRICKFERRY_NO_DOWNLOAD=true)
//  4. none: the task fails and asks for the "Install Brickferry tools" step.
//
// It never loads azure-pipelines-task-lib: that library moves the inputs and
// secrets out of the environment when it loads (node/internal.ts _loadData).
// A Node-handler task must exit 0 (PLATFORM-FACTS); the result is reported with
// task.complete.

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { platformKey } = require('./platform');
const toolcache = require('./toolcache');
const { Writer } = require('./vso');

const ADD_STEP = 'Add the "Install Brickferry tools" step (BrickferryTools@1) before this step in the job.';

class NotFoundError extends Error {}

function isTrue(v) {
  return String(v || '').trim().toLowerCase() === 'true';
}

function byVersionDesc(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i] - pa[i];
  return 0;
}

// toolsFolders lists BrickferryTools task folders that the agent extracted
// beside this task, the pinned version first.
function toolsFolders(taskDir, tools) {
  const tasksRoot = path.resolve(taskDir, '..', '..');
  const suffix = `_${tools.id}`.toLowerCase();
  let names = [];
  try {
    names = fs.readdirSync(tasksRoot);
  } catch {
    return [];
  }
  const out = [];
  for (const name of names.filter((n) => n.toLowerCase().endsWith(suffix))) {
    const base = path.join(tasksRoot, name);
    let versions = [];
    try {
      versions = fs.readdirSync(base).filter((v) => /^\d+\.\d+\.\d+$/.test(v)
        && fs.existsSync(path.join(base, v, 'bin', 'manifest.json')));
    } catch {
      continue;
    }
    versions.sort((a, b) => (a === tools.version ? -1 : b === tools.version ? 1 : byVersionDesc(a, b)));
    out.push(...versions.map((v) => path.join(base, v)));
  }
  return out;
}

// resolveExecutable returns {exe, data, source} or throws NotFoundError with
// what each step found. log receives human-readable progress lines.
async function resolveExecutable({ config, env, taskDir, key, arch, log }) {
  const want = config.sha256 && config.sha256[key];
  if (!want) throw new NotFoundError(`this task was packaged without a brickferry executable for ${key}`);
  const roots = [...new Set([env.AGENT_TOOLSDIRECTORY, env.AGENT_TEMPDIRECTORY].filter(Boolean))];
  const tried = [];
  const pinned = { version: config.version, arch, key, sha256: want };

  for (const root of roots) {
    const hit = toolcache.findInCache({ root, ...pinned });
    if (hit.exe) return { exe: hit.exe, data: hit.data, source: 'tool cache' };
    tried.push(`cache: ${hit.miss}`);
  }
  if (roots.length === 0) tried.push('cache: neither AGENT_TOOLSDIRECTORY nor AGENT_TEMPDIRECTORY is set');

  const folders = toolsFolders(taskDir, config.tools);
  for (const dir of folders) {
    try {
      const { data } = toolcache.fromFolder(dir, key);
      const got = toolcache.sha256(data);
      if (got !== want) {
        tried.push(`BrickferryTools folder ${dir}: refused, its ${key} executable has sha256 ${got}, expected ${want}`);
        continue;
      }
      const exe = toolcache.install({ roots, ...pinned, data });
      log(`Installed brickferry ${config.version} (${key}) from the BrickferryTools task in this job: ${exe}`);
      return { exe, data, source: 'BrickferryTools task folder' };
    } catch (err) {
      tried.push(`BrickferryTools folder ${dir}: ${err.message}`);
    }
  }
  if (folders.length === 0) tried.push('BrickferryTools task: not in this job');

  if (isTrue(env.BRICKFERRY_NO_DOWNLOAD)) {
    tried.push('download: turned off by BRICKFERRY_NO_DOWNLOAD=true');
  } else {
    try {
      // loaded only here: http/https/tls cost start-up time on every cache hit
      const { downloadTools } = require('./download');
      const { data, version } = await downloadTools({ env, tools: config.tools, key, sha256: want, log });
      const exe = toolcache.install({ roots, ...pinned, data });
      log(`Installed brickferry ${config.version} (${key}) from BrickferryTools ${version} downloaded from the organization: ${exe}`);
      return { exe, data, source: 'download' };
    } catch (err) {
      tried.push(`download: ${err.message}`);
    }
  }
  const e = new NotFoundError(`The brickferry executable for ${key} is not available to this job. ${ADD_STEP}`);
  e.tried = tried;
  throw e;
}

// runChild starts the executable asynchronously with the same environment and
// passes the agent's cancel on (the agent cancels with SIGINT, then SIGTERM
// 7.5 s later: Agent.Sdk/ProcessInvoker.cs). On Linux and macOS the signal
// reaches only this process, so it is forwarded. On Windows the agent sends
// Ctrl+C to the whole console (ProcessInvoker.Windows.cs
// GenerateConsoleCtrlEvent), which brickferry receives itself, while
// child.kill(sig) there terminates the child at once (Node's documentation,
// subprocess.kill) and the Databricks run would keep running: the signal is
// only noted. Either way the launcher stays alive until brickferry has
// written its task.complete. It resolves {code, signal, signalled, forwarded, error}.
function runChild(exe, args, env, { platform = process.platform, spawnFn = spawn } = {}) {
  return new Promise((resolve) => {
    let signalled = null;
    let forwarded = false;
    const child = spawnFn(exe, args, { stdio: 'inherit', env, windowsHide: true });
    const handlers = {};
    for (const sig of ['SIGINT', 'SIGTERM']) {
      handlers[sig] = () => {
        signalled = signalled || sig;
        if (platform !== 'win32') {
          forwarded = true;
          child.kill(sig);
        }
      };
      process.on(sig, handlers[sig]);
    }
    const done = (result) => {
      for (const [sig, h] of Object.entries(handlers)) process.removeListener(sig, h);
      resolve({ signalled, forwarded, ...result });
    };
    child.on('error', (error) => done({ error }));
    child.on('exit', (code, signal) => done({ code, signal }));
  });
}

// runTask runs `brickferry <task>` and turns a crash or a failure to start
// into a failed task (a cancel into a cancelled one); brickferry reports
// everything else itself.
async function runTask({ exe, task, env, w, platform = process.platform }) {
  const r = await runChild(exe, [task], env, { platform });
  if (r.error) {
    w.error(`Could not start brickferry for ${task}: ${r.error.message}`);
    w.complete('Failed', 'brickferry did not start');
  } else if (r.code !== 0) {
    const how = r.signal ? `was stopped by ${r.signal}` : `exited with code ${r.code}`;
    if (r.signalled) {
      w.error(`brickferry ${task} ${how} after the job was cancelled`);
      w.complete('Canceled', 'cancelled');
    } else {
      w.error(`brickferry ${task} ${how} before it reported a result (a crash)`);
      w.complete('Failed', 'brickferry crashed');
    }
  }
  return r;
}

async function main({ env = process.env, taskDir = __dirname, out = process.stdout, config } = {}) {
  const w = new Writer(out);
  const debug = isTrue(env.SYSTEM_DEBUG);
  let task = 'task';
  try {
    const cfg = config || JSON.parse(fs.readFileSync(path.join(taskDir, 'launcher.json'), 'utf8'));
    task = cfg.task;
    const key = platformKey();
    let found;
    try {
      found = await resolveExecutable({ config: cfg, env, taskDir, key, arch: process.arch, log: (m) => w.line(m) });
    } catch (err) {
      for (const t of err.tried || []) w.line(`  ${t}`);
      throw err;
    }
    const exe = toolcache.ensureRunnable(found.exe, found.data, env.AGENT_TEMPDIRECTORY, key);
    if (debug) w.debug(`brickferry ${cfg.version} from the ${found.source}: ${exe}`);
    await runTask({ exe, task, env, w });
  } catch (err) {
    w.error(err.message);
    w.complete('Failed', `${task} could not start`);
  }
  return 0;
}

module.exports = { main, resolveExecutable, toolsFolders, runChild, runTask, NotFoundError, ADD_STEP };

if (require.main === module) {
  main().then((code) => { process.exitCode = code; }, (err) => {
    process.stdout.write(`##vso[task.issue type=error;]launcher: ${String(err && err.message).replace(/[\r\n%]/g, ' ')}\n##vso[task.complete result=Failed;]\n`);
    process.exitCode = 0;
  });
}

'use strict';
// Step 3 of the launcher: fetch the BrickferryTools task from the organization
// with the request the agent itself uses to download a task
// (microsoft/azure-pipelines-agent src/Agent.Worker/TaskManager.cs →
// TaskServer.GetTaskContentZipAsync: GET {collection}_apis/distributedtask/tasks/{id}/{version},
// the job token), with the Accept header the agent's own Node client sends on
// this route: application/zip;api-version=7.2-preview.1 (azure-devops-node-api
// 14 TaskAgentApiBase.getTaskContentZip, createAcceptHeader). Proxy and certificate settings are
// the agent's own (azure-pipelines-task-lib node/task.ts getHttpProxyConfiguration,
// getHttpCertConfiguration): the agent sets AGENT_PROXYURL etc., not HTTPS_PROXY.

const fs = require('fs');
const http = require('http');
const https = require('https');
const tls = require('tls');
const net = require('net');
const { readZip } = require('./zip');
const { toolsExecutable, sha256, HashMismatchError } = require('./toolcache');

const MAX_REDIRECTS = 5;
const TIMEOUT_MS = 60_000;
const MAX_BYTES = 256 * 1024 * 1024;

// API versions of the distributedtask routes, newest first. The first is what
// azure-devops-node-api 14 asks for (TaskAgentApiBase getTaskContentZip,
// getTaskDefinitions); that client lowers it to the server's maximum after an
// OPTIONS round trip, which an Azure DevOps Server without 7.2 would need. We
// skip the round trip: such a server answers 400 (VssVersionOutOfRangeException),
// and the request is made again with 5.0-preview.1, which every Azure DevOps
// Server since 2019 serves.
const API_VERSIONS = ['7.2-preview.1', '5.0-preview.1'];

class HttpError extends Error {
  constructor(status, url, message) {
    super(message || `HTTP ${status} from ${safeUrl(url)}`);
    this.status = status;
  }
}

// safeUrl drops query and credentials: a redirect target can carry a signature.
function safeUrl(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

function isTrue(v) {
  return String(v || '').trim().toLowerCase() === 'true';
}

function tlsOptions(env) {
  const o = {};
  if (env.AGENT_CAINFO) o.ca = [...tls.rootCertificates, fs.readFileSync(env.AGENT_CAINFO, 'utf8')];
  const passphrase = env.SECRET_AGENT_CLIENTCERTPASSWORD || env.AGENT_CLIENTCERTPASSWORD;
  if (env.AGENT_CLIENTCERTARCHIVE) {
    o.pfx = fs.readFileSync(env.AGENT_CLIENTCERTARCHIVE);
    if (passphrase) o.passphrase = passphrase;
  } else if (env.AGENT_CLIENTCERT) {
    o.cert = fs.readFileSync(env.AGENT_CLIENTCERT);
    if (env.AGENT_CLIENTCERTKEY) o.key = fs.readFileSync(env.AGENT_CLIENTCERTKEY);
    if (passphrase) o.passphrase = passphrase;
  }
  if (isTrue(env.AGENT_SKIPCERTVALIDATION)) o.rejectUnauthorized = false;
  return o;
}

// proxyFor returns the agent's proxy for url, or null (none, or bypassed).
function proxyFor(url, env) {
  if (!env.AGENT_PROXYURL) return null;
  let bypass = [];
  try {
    bypass = JSON.parse(env.AGENT_PROXYBYPASSLIST || '[]');
  } catch {
    bypass = [];
  }
  for (const pattern of bypass) {
    try {
      if (new RegExp(pattern, 'i').test(url)) return null;
    } catch {
      // an invalid pattern bypasses nothing, as in task-lib
    }
  }
  const proxy = new URL(env.AGENT_PROXYURL);
  const user = env.AGENT_PROXYUSERNAME || decodeURIComponent(proxy.username);
  const pass = env.SECRET_AGENT_PROXYPASSWORD || env.AGENT_PROXYPASSWORD || decodeURIComponent(proxy.password);
  const headers = {};
  if (user) headers['Proxy-Authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  return { url: proxy, headers };
}

function send(req, resolve, reject) {
  req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
  req.on('response', resolve);
  req.on('error', reject);
  req.end();
}

// requestOnce sends one GET and resolves with the response (no redirects).
function requestOnce(url, headers, env) {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const tlsOpts = secure ? tlsOptions(env) : {};
    const proxy = proxyFor(url.href, env);
    if (!proxy) {
      send((secure ? https : http).request(url, { method: 'GET', headers, agent: false, ...tlsOpts }), resolve, reject);
      return;
    }
    const viaTls = proxy.url.protocol === 'https:';
    const proxyPort = proxy.url.port || (viaTls ? 443 : 80);
    if (!secure) {
      // Plain http through the proxy: absolute-form request line.
      const req = (viaTls ? https : http).request({
        host: proxy.url.hostname, port: proxyPort, method: 'GET', path: url.href, agent: false,
        headers: { ...headers, ...proxy.headers, Host: url.host },
      });
      send(req, resolve, reject);
      return;
    }
    const target = `${url.hostname}:${url.port || 443}`;
    const connect = (viaTls ? https : http).request({
      host: proxy.url.hostname, port: proxyPort, method: 'CONNECT', path: target, agent: false,
      headers: { ...proxy.headers, Host: target },
    });
    connect.setTimeout(TIMEOUT_MS, () => connect.destroy(new Error('the proxy did not answer')));
    connect.on('error', reject);
    connect.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new HttpError(res.statusCode, url, `the agent proxy ${proxy.url.host} refused the tunnel (HTTP ${res.statusCode})`));
        return;
      }
      const servername = net.isIP(url.hostname) ? undefined : url.hostname;
      const req = https.request(url, {
        method: 'GET', headers, ...tlsOpts,
        createConnection: () => tls.connect({ socket, servername, ...tlsOpts }),
      });
      send(req, resolve, reject);
    });
    connect.end();
  });
}

function readBody(res) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    res.on('data', (c) => {
      n += c.length;
      if (n > MAX_BYTES) res.destroy(new Error('response too large'));
      else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

// get follows redirects. The job token goes only to the origin it was issued
// for: a redirect to another host (a storage account, a CDN) is followed
// without it, and it is not sent again after that.
async function get(urlStr, { token, accept, env }) {
  let url = new URL(urlStr);
  const origin = url.origin;
  let auth = token;
  for (let hop = 0; ; hop++) {
    const headers = { Accept: accept, 'User-Agent': 'brickferry-launcher' };
    if (auth && url.origin === origin) headers.Authorization = `Bearer ${auth}`;
    const res = await requestOnce(url, headers, env);
    const status = res.statusCode;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new HttpError(status, url, `too many redirects from ${safeUrl(urlStr)}`);
      const next = new URL(res.headers.location, url);
      if (next.origin !== origin) auth = null;
      url = next;
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new HttpError(status, url);
    }
    return readBody(res);
  }
}

// getVersioned is get with Accept: <type>;api-version=<v>, falling back to the
// older API version on 400.
async function getVersioned(url, { token, type, env }) {
  for (let i = 0; ; i++) {
    try {
      return await get(url, { token, accept: `${type};api-version=${API_VERSIONS[i]}`, env });
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 400) || i === API_VERSIONS.length - 1) throw err;
    }
  }
}

function collectionUri(env) {
  const uri = env.SYSTEM_TASKDEFINITIONSURI || env.SYSTEM_TEAMFOUNDATIONCOLLECTIONURI || env.ENDPOINT_URL_SYSTEMVSSCONNECTION;
  if (!uri) return '';
  return uri.endsWith('/') ? uri : `${uri}/`;
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

function executableFromZip(buf, key) {
  const zip = readZip(buf);
  const manifestName = [...zip.entries.keys()].find((n) => n === 'bin/manifest.json' || n.endsWith('/bin/manifest.json'));
  if (!manifestName) throw new Error('the downloaded task has no bin/manifest.json');
  const prefix = manifestName.slice(0, -'bin/manifest.json'.length);
  return toolsExecutable((name) => zip.extract(prefix + name), key);
}

// downloadTools returns {data, version}: the verified executable for key from
// the BrickferryTools task on the organization. When the pinned version is gone
// (404) it takes the newest version of the same major, and only if that
// version carries an executable with the pinned hash.
async function downloadTools({ env, tools, key, sha256: want, log }) {
  const base = collectionUri(env);
  if (!base) throw new Error('the agent gave no organization URL (SYSTEM_TASKDEFINITIONSURI)');
  const token = env.ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN;
  if (!token) throw new Error('the agent gave no job access token');
  const zipUrl = (v) => `${base}_apis/distributedtask/tasks/${tools.id}/${v}`;
  const fetchVersion = async (version) => {
    if (log) log(`Downloading the BrickferryTools task ${version} from ${new URL(base).origin}`);
    const zip = await getVersioned(zipUrl(version), { token, type: 'application/zip', env });
    const { data } = executableFromZip(zip, key);
    const got = sha256(data);
    if (got !== want) {
      throw new HashMismatchError(`BrickferryTools ${version} carries a ${key} executable with sha256 ${got}, this task was built for ${want}`);
    }
    return { data, version };
  };
  try {
    return await fetchVersion(tools.version);
  } catch (err) {
    if (err instanceof HttpError && (err.status === 401 || err.status === 403)) {
      throw new Error(`the organization refused the job token (HTTP ${err.status}) when downloading BrickferryTools ${tools.version}`);
    }
    if (!(err instanceof HttpError && err.status === 404)) throw err;
  }
  const listing = JSON.parse((await getVersioned(`${base}_apis/distributedtask/tasks/${tools.id}?allversions=true`,
    { token, type: 'application/json', env })).toString('utf8'));
  const defs = Array.isArray(listing) ? listing : listing.value || [];
  const major = Number(tools.version.split('.')[0]);
  const versions = defs.map((d) => d && d.version)
    .filter((v) => v && Number(v.major) === major)
    .map((v) => `${v.major}.${v.minor}.${v.patch}`)
    .filter((v) => v !== tools.version)
    .sort(compareVersions);
  if (versions.length === 0) {
    throw new Error(`BrickferryTools ${tools.version} is not on the organization and no other ${major}.x version is`);
  }
  return fetchVersion(versions[versions.length - 1]);
}

module.exports = { downloadTools, get, proxyFor, collectionUri, HttpError, compareVersions, API_VERSIONS };

'use strict';
// The pipeline YAML the project shows users: the sample pipelines, the
// example step of each task (tasks/<Folder>/example.yml) and every
// ```yaml block of the documentation, each made a whole pipeline for the
// schema (a list of steps, jobs or stages is put under steps:, jobs: or
// stages:, as it would be pasted).
const fs = require('fs');
const path = require('path');
const { ROOT } = require('./schema');

const SAMPLES = ['examples/azure-pipelines.yml', 'examples/azure-pipelines-uc.yml'];

// A block that is not Azure Pipelines YAML of an organization with Brickferry
// installed says so on the line before its fence, with the reason:
//   <!-- not checked against the pipeline schema: <reason> -->
const SKIP = /<!--\s*not checked against the pipeline schema:\s*(.+?)\s*-->/;

function markdownFiles(root = ROOT) {
  const out = [path.join(root, 'README.md')];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk(path.join(root, 'docs'));
  return out.sort();
}

// yamlBlocks returns the ```yaml blocks of a Markdown text: {line (of the
// first YAML line, from 1), text (dedented by the fence's indentation),
// skip (the reason, when the block is marked as not checked)}.
function yamlBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ya?ml\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) {
      body.push(lines[j].slice(Math.min(indent, lines[j].length - lines[j].trimStart().length)));
    }
    const skip = i > 0 ? SKIP.exec(lines[i - 1]) : null;
    blocks.push({ line: i + 2, text: body.join('\n') + '\n', skip: skip ? skip[1] : undefined });
    i = j;
  }
  return blocks;
}

// asPipeline makes a pipeline of a block: a list is put under the key its
// items belong to; top-level keys without steps, jobs, stages or extends
// (a variables: block) get one step after them, as the pipeline they are
// pasted into has. It returns the text and how many lines were added on top.
function asPipeline(text) {
  const lines = text.split('\n');
  const first = lines.find((l) => l.trim() !== '' && !l.trim().startsWith('#')) || '';
  const item = /^-\s+([A-Za-z]+)\s*:/.exec(first);
  if (item) {
    const key = { job: 'jobs', deployment: 'jobs', stage: 'stages' }[item[1]] || 'steps';
    return { text: `${key}:\n${text}`, offset: 1 };
  }
  if (!lines.some((l) => /^(steps|jobs|stages|extends)\s*:/.test(l))) {
    return { text: `${text}steps:\n- checkout: none\n`, offset: 0 };
  }
  return { text, offset: 0 };
}

// documents lists everything to check: {name (file:line), text, offset, skip}.
function documents(root = ROOT) {
  const files = [...SAMPLES];
  // The example step of each task, which `brickferry help <Task>` prints.
  const tasks = path.join(root, 'tasks');
  if (fs.existsSync(tasks)) {
    for (const d of fs.readdirSync(tasks).sort()) {
      if (fs.existsSync(path.join(tasks, d, 'example.yml'))) files.push(`tasks/${d}/example.yml`);
    }
  }
  const out = files.map((f) => {
    const p = asPipeline(fs.readFileSync(path.join(root, f), 'utf8'));
    return { name: f, text: p.text, offset: p.offset };
  });
  for (const file of markdownFiles(root)) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    for (const b of yamlBlocks(fs.readFileSync(file, 'utf8'))) {
      const p = asPipeline(b.text);
      out.push({ name: `${rel}:${b.line}`, text: p.text, offset: p.offset - b.line + 1, skip: b.skip });
    }
  }
  return out;
}

module.exports = { documents, yamlBlocks, asPipeline, SAMPLES };

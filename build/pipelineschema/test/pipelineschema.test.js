'use strict';
// The sample pipelines and every ```yaml block of the documentation pass
// Microsoft's pipeline schema with the Brickferry tasks added, as
// azure-pipelines-language-service (the YAML validation of the Azure
// Pipelines extension for Visual Studio Code) checks it; and the check finds
// the mistakes a user makes in a step.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { build, validator, taskFiles, taskEntries, readTask, ROOT } = require('../schema');
const { documents, yamlBlocks, SAMPLES } = require('../documents');
const { check } = require('../check');

const validate = validator(build());

test('every sample and every YAML block of the docs: no findings', async (t) => {
  const docs = documents();
  assert.deepEqual(docs.filter((d) => SAMPLES.includes(d.name)).map((d) => d.name), SAMPLES);
  assert.deepEqual(docs.filter((d) => d.name.startsWith('tasks/')).map((d) => d.name),
    ['tasks/BatchScoreV1/example.yml', 'tasks/DatabricksTrainV1/example.yml', 'tasks/MLflowPromoteV1/example.yml', 'tasks/ModelServeV1/example.yml']);
  assert.ok(docs.length > 15, `only ${docs.length} documents found`);
  const { findings, skipped } = await check(docs, validate);
  assert.deepEqual(findings, []);
  for (const s of skipped) t.diagnostic(`not checked: ${s}`);
});

// sample returns the workspace-registry sample with one line replaced.
function plant(from, to) {
  const text = fs.readFileSync(path.join(ROOT, SAMPLES[0]), 'utf8');
  assert.ok(text.includes(from), `the sample has no ${JSON.stringify(from)}`);
  const line = text.slice(0, text.indexOf(from)).split('\n').length;
  return { text: text.replace(from, to), line };
}

test('planted mistakes in the sample are found on their line', async (t) => {
  const cases = [
    { name: 'an integer input given as a string', from: 'trafficPercent: 100', to: 'trafficPercent: "100"', message: /Incorrect type\. Expected "integer"/ },
    { name: 'a misspelled input name', from: 'endpointName: churn', to: 'endpointNmae: churn', message: /Unexpected property endpointNmae/ },
    { name: 'a value outside a pick list', from: 'workloadSize: Small', to: 'workloadSize: Tiny', message: /Value is not accepted/ },
    { name: 'a boolean input given a word', from: 'smokeTest: true', to: 'smokeTest: maybe', message: /Incorrect type\. Expected "boolean"/ },
    { name: 'a task version that is not installed', from: 'task: ModelServe@1', to: 'task: ModelServe@2', message: /Value is not accepted/ },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const { text, line } = plant(c.from, c.to);
      const found = await validate(text);
      assert.ok(found.some((f) => f.line === line && c.message.test(f.message)),
        `no finding ${c.message} on line ${line}: ${JSON.stringify(found)}`);
    });
  }
});

test('a required input left out is found', async () => {
  const found = await validate('steps:\n- task: ModelServe@1\n  inputs:\n    endpointName: churn\n    modelVersion: "3"\n');
  assert.ok(found.some((f) => /Missing property "modelName"/.test(f.message)), JSON.stringify(found));
});

test('a finding in a docs block is reported at its line in the Markdown file', async () => {
  const md = 'text\n\n```yaml\n- task: ModelServe@1\n  inputs:\n    modelName: churn\n    modelVersion: "3"\n    endpointName: churn\n    trafficPercent: "50"\n```\n';
  const blocks = yamlBlocks(md);
  assert.equal(blocks.length, 1);
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'schema-'));
  try {
    fs.mkdirSync(path.join(dir, 'docs'));
    fs.mkdirSync(path.join(dir, 'examples'));
    for (const s of SAMPLES) fs.copyFileSync(path.join(ROOT, s), path.join(dir, s));
    fs.writeFileSync(path.join(dir, 'README.md'), '# x\n');
    fs.writeFileSync(path.join(dir, 'docs', 'page.md'), md);
    const { findings } = await check(documents(dir), validate);
    assert.deepEqual(findings, ['docs/page.md:9:21: warning: Incorrect type. Expected "integer".']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('task.json inputs become schema entries as in the organization schema', () => {
  const { name, branch } = taskEntries({
    name: 'Sample', friendlyName: 'Sample task', description: 'Does things', version: { Major: 3 },
    inputs: [
      { name: 'mode', type: 'pickList', label: 'Mode', required: true, options: { a: 'A', b: 'B' } },
      { name: 'group', type: 'pickList', label: 'Group', properties: { EditableOptions: 'True' }, options: { x: 'X' } },
      { name: 'kind', type: 'radio', label: 'Kind', defaultValue: 'x', required: true, options: { x: 'X', y: 'Y' } },
      { name: 'count', type: 'int', label: 'Count' },
      { name: 'wait', type: 'boolean', label: 'Wait' },
      { name: 'azureSubscription', type: 'connectedService:AzureRM', label: 'Connection', required: true, aliases: ['connectedServiceName'] },
      { name: 'path', type: 'string', label: 'Path', required: true, visibleRule: 'mode = a' },
    ],
  });
  assert.deepEqual(name, { description: 'Does things', doNotSuggest: false, ignoreCase: 'value', enum: ['Sample@3'] });
  assert.equal(branch.properties.task.pattern, '^Sample@3$');
  assert.deepEqual(branch.properties.inputs.properties, {
    mode: { description: 'Mode', ignoreCase: 'all', enum: ['a', 'b'] },
    group: { type: 'string', description: 'Group', ignoreCase: 'key' },
    kind: { description: 'Kind', ignoreCase: 'all', enum: ['x', 'y'] },
    count: { type: 'integer', description: 'Count', ignoreCase: 'key' },
    wait: { type: 'boolean', description: 'Wait', ignoreCase: 'key' },
    azureSubscription: { type: 'string', description: 'Connection', ignoreCase: 'key', aliases: ['connectedServiceName'] },
    path: { type: 'string', description: 'Path', ignoreCase: 'key' },
  });
  assert.equal(branch.properties.inputs.additionalProperties, false);
  assert.deepEqual(branch.properties.inputs.required, ['mode', 'azureSubscription']);
  assert.deepEqual(branch.required, ['task', 'inputs']);
});

test('all five tasks are in the built schema', () => {
  const names = taskFiles().map((f) => `${readTask(f).name}@${readTask(f).version.Major}`);
  assert.deepEqual(names.sort(), ['BatchScore@1', 'BrickferryTools@1', 'DatabricksTrain@1', 'MLflowPromote@1', 'ModelServe@1']);
  const listed = build().definitions.task.properties.task.anyOf.flatMap((e) => e.enum || []);
  for (const n of names) assert.ok(listed.includes(n), n);
});

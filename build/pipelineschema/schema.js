'use strict';
// Microsoft's Azure Pipelines YAML schema (service-schema.json, see SOURCE.md)
// with the Brickferry tasks added the way an organization's schema lists the
// tasks installed in it, and a validator that runs the schema through
// azure-pipelines-language-service: the YAML validation of the Azure
// Pipelines extension for Visual Studio Code, which downloads the same kind
// of schema from the organization (GET _apis/distributedtask/yamlschema).
//
// How a task becomes schema entries is read off the tasks service-schema.json
// already lists (checked against their task.json files in
// microsoft/azure-pipelines-tasks):
//   - definitions.task.properties.task.anyOf gets {description, doNotSuggest,
//     ignoreCase: "value", enum: ["Name@Major"]};
//   - definitions.task.anyOf gets one branch per task: properties.task is
//     {description: "friendlyName\n\ndescription", ignoreCase: "value",
//     pattern: "^Name@Major$"}, properties.inputs lists every input with
//     additionalProperties false;
//   - an input's description is its label; aliases are kept;
//   - boolean → "type": "boolean"; int → "type": "integer"
//     (DotNetCoreCLI@2 requestTimeout); a pickList or radio with fixed
//     options → enum of the option keys, "ignoreCase": "all"
//     (AzureCLI@2 scriptType); an editable pickList and every other type
//     (string, multiLine, filePath, connectedService:*) → "type": "string",
//     "ignoreCase": "key" (AzureRmWebAppDeployment@4 ResourceGroupName);
//   - inputs.required lists the inputs that are required, have no
//     visibleRule and no default (AzureCLI@2: azureSubscription, scriptType;
//     DotNetCoreCLI@2's required `command` has a default and is not listed),
//     and the branch requires "inputs" only when that list is not empty.
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const SERVICE_SCHEMA = path.join(__dirname, 'service-schema.json');

// readTask reads a task.json (which may start with a byte order mark).
function readTask(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
}

// taskFiles lists tasks/<Name>V<Major>/task.json.
function taskFiles(root = ROOT) {
  const dir = path.join(root, 'tasks');
  return fs.readdirSync(dir)
    .map((d) => path.join(dir, d, 'task.json'))
    .filter((f) => fs.existsSync(f))
    .sort();
}

function inputSchema(input) {
  const s = {};
  const options = Object.keys(input.options || {});
  const editable = String((input.properties || {}).EditableOptions || '').toLowerCase() === 'true';
  if ((input.type === 'pickList' || input.type === 'radio') && options.length > 0 && !editable) {
    s.description = input.label;
    s.ignoreCase = 'all';
    s.enum = options;
  } else {
    s.type = input.type === 'boolean' ? 'boolean' : input.type === 'int' ? 'integer' : 'string';
    s.description = input.label;
    s.ignoreCase = 'key';
  }
  if (input.aliases && input.aliases.length > 0) {
    s.aliases = input.aliases;
  }
  return s;
}

// taskEntries returns the two schema entries of one task.json.
function taskEntries(task) {
  const ref = `${task.name}@${task.version.Major}`;
  const properties = {};
  const required = [];
  for (const input of task.inputs || []) {
    properties[input.name] = inputSchema(input);
    if (input.required && !input.visibleRule && (input.defaultValue === undefined || input.defaultValue === '')) {
      required.push(input.name);
    }
  }
  const name = {
    description: task.description,
    doNotSuggest: false,
    ignoreCase: 'value',
    enum: [ref],
  };
  const branch = {
    properties: {
      task: { description: `${task.friendlyName}\n\n${task.description}`, ignoreCase: 'value', pattern: `^${ref}$` },
      inputs: { description: `${task.friendlyName} inputs`, properties, additionalProperties: false, required },
    },
    doNotSuggest: false,
    firstProperty: ['task'],
    required: required.length > 0 ? ['task', 'inputs'] : ['task'],
  };
  return { name, branch };
}

// build returns service-schema.json with the given task.json files added.
function build(files = taskFiles()) {
  const schema = JSON.parse(fs.readFileSync(SERVICE_SCHEMA, 'utf8'));
  const task = schema.definitions.task;
  for (const file of files) {
    const { name, branch } = taskEntries(readTask(file));
    task.properties.task.anyOf.push(name);
    task.anyOf.push(branch);
  }
  return schema;
}

// validator returns validate(text, uri) → Promise of findings
// ({line, character, severity, message}; line and character from 1) for a
// schema built once.
function validator(schema = build()) {
  // Installed in build/devtools (the Makefile's devtools target), not in the
  // repository root's node_modules, which make demo installs.
  const ls = require(path.join(__dirname, '..', 'devtools', 'node_modules', 'azure-pipelines-language-service'));
  const uri = 'file:///brickferry/pipeline-schema.json';
  const service = ls.getLanguageService(
    () => Promise.resolve(schema), [], null);
  service.configure({ validate: true, schemas: [{ uri, fileMatch: ['*'], schema }] });
  return async (text, docUri = 'file:///pipeline.yml') => {
    const doc = ls.TextDocument.create(docUri, 'yaml', 1, text);
    // The schema service prints progress with console.log (jsonSchemaService.js
    // getSchemaForResource): keep it out of the test output.
    const log = console.log;
    let diagnostics;
    console.log = () => {};
    try {
      diagnostics = await service.doValidation(doc, ls.parse(text));
    } finally {
      console.log = log;
    }
    return diagnostics.map((d) => ({
      line: d.range.start.line + 1,
      character: d.range.start.character + 1,
      severity: ['', 'error', 'warning', 'information', 'hint'][d.severity] || String(d.severity),
      message: d.message,
    }));
  };
}

module.exports = { build, validator, taskFiles, taskEntries, readTask, ROOT };

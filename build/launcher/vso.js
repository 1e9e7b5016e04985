'use strict';
// Logging commands the agent reads from a task's stdout
// (microsoft/azure-pipelines-agent src/Microsoft.VisualStudio.Services.Agent/Command.cs,
// azure-pipelines-task-lib node/taskcommand.ts). The percent escape is %AZP25.

function escapeData(s) {
  return String(s).replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s) {
  return escapeData(s).replace(/]/g, '%5D').replace(/;/g, '%3B');
}

// neutralise keeps text from elsewhere (paths, server messages) from being read
// as a logging command.
function neutralise(s) {
  return String(s).replace(/##vso\[/gi, '##vso[\u200b').replace(/##\[/g, '##[\u200b');
}

function command(name, props, message) {
  let p = '';
  for (const [k, v] of Object.entries(props || {})) {
    p += `${k}=${escapeProperty(v)};`;
  }
  return `##vso[${name}${p ? ` ${p}` : ''}]${escapeData(message == null ? '' : message)}`;
}

// Writer turns decisions into ##vso commands on one stream (stdout by default).
class Writer {
  constructor(out) {
    this.out = out || process.stdout;
  }
  line(text) {
    this.out.write(neutralise(text) + '\n');
  }
  debug(text) {
    this.out.write(`##[debug]${neutralise(text)}\n`);
  }
  error(message) {
    this.out.write(command('task.issue', { type: 'error' }, neutralise(message)) + '\n');
  }
  complete(result, message) {
    this.out.write(command('task.complete', { result }, message) + '\n');
  }
  setVariable(name, value, isOutput) {
    const props = { variable: name };
    if (isOutput) props.isOutput = 'true';
    this.out.write(command('task.setvariable', props, value) + '\n');
  }
  prependPath(dir) {
    this.out.write(command('task.prependpath', {}, dir) + '\n');
  }
}

module.exports = { escapeData, escapeProperty, neutralise, command, Writer };

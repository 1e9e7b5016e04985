'use strict';
// Checks the sample pipelines and every ```yaml block of the documentation
// against Microsoft's pipeline schema with the Brickferry tasks added
// (schema.js), and prints one line per finding: file:line:column: message.
// Exit status 1 when there is a finding. `make test` runs it through
// test/pipelineschema.test.js.
const { validator } = require('./schema');
const { documents } = require('./documents');

// check returns the findings of every document, and the skipped blocks.
async function check(docs = documents(), validate = validator()) {
  const findings = [];
  const skipped = [];
  for (const d of docs) {
    if (d.skip) {
      skipped.push(`${d.name}: ${d.skip}`);
      continue;
    }
    for (const f of await validate(d.text)) {
      const [file] = d.name.split(':');
      findings.push(`${file}:${f.line - d.offset}:${f.character}: ${f.severity}: ${f.message}`);
    }
  }
  return { findings, skipped };
}

if (require.main === module) {
  check().then(({ findings, skipped }) => {
    for (const s of skipped) console.log(`not checked: ${s}`);
    for (const f of findings) console.log(f);
    console.log(findings.length === 0 ? 'no findings' : `${findings.length} finding(s)`);
    process.exitCode = findings.length === 0 ? 0 : 1;
  }, (err) => {
    console.error(err);
    process.exitCode = 2;
  });
}

module.exports = { check };

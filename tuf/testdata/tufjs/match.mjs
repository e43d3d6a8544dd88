// match.mjs: ask tuf-js's own delegation matcher which target paths a
// delegated role's path patterns match, and print one JSON document.
//
//   node match.mjs < input.json
//
// input is {"patterns": [...], "paths": [...]}; the output is
// {"matches": [bool, ...]}, one per path: DelegatedRole.isDelegatedPath
// of a role delegated exactly those patterns, as tuf-js's updater calls
// it while it searches the delegations.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { DelegatedRole } = require('@tufjs/models/dist/role.js');

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const role = new DelegatedRole({ name: 'project', keyIDs: [], threshold: 1, terminating: true, paths: input.patterns });
process.stdout.write(JSON.stringify({ matches: input.paths.map((p) => role.isDelegatedPath(p)) }) + '\n');

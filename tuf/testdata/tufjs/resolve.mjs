// resolve.mjs: resolve TUF target paths with tuf-js, an independent TUF
// client, and print what it found as one JSON document on stdout.
//
//   node resolve.mjs METADATA_URL TARGETS_URL TRUSTED_ROOT_FILE WORK_DIR [--blake2b-256] < paths
//
// --blake2b-256 teaches node's crypto the hash name "blake2b-256"
// (blake2b.mjs) before tuf-js runs; tuf-js itself is unchanged, and
// without the flag it is run exactly as published.
//
// stdin holds one target path per line. WORK_DIR is the client's state:
// its metadata and target caches are made in it. When WORK_DIR holds no
// metadata/root.json yet, the trusted root is copied there first (tuf-js
// reads it at construction); otherwise the client starts from what it
// cached in an earlier run, as an installed client does.
// The output is
//
//   {"refresh": {"ok": bool, "error": string},
//    "results": [{"path", "found", "length", "hashes", "downloaded", "error"}]}
//
// "found" is getTargetInfo's answer; "downloaded" is true when
// downloadTarget fetched the file and tuf-js verified its length and
// hashes. "error" is the text of the first error for that path. The
// script exits 0 whenever it could report, 2 on bad usage.
import fs from 'node:fs';
import path from 'node:path';
import { Updater } from 'tuf-js';
import { install as installBLAKE2b } from './blake2b.mjs';

const [metadataBaseUrl, targetBaseUrl, rootFile, work, ...flags] = process.argv.slice(2);
if (!work || flags.some((f) => f !== '--blake2b-256')) {
  process.stderr.write('usage: node resolve.mjs METADATA_URL TARGETS_URL TRUSTED_ROOT_FILE WORK_DIR [--blake2b-256] < paths\n');
  process.exit(2);
}
if (flags.includes('--blake2b-256')) {
  installBLAKE2b();
}
const metadataDir = path.join(work, 'metadata');
const targetDir = path.join(work, 'targets');
fs.mkdirSync(metadataDir, { recursive: true });
fs.mkdirSync(targetDir, { recursive: true });
if (!fs.existsSync(path.join(metadataDir, 'root.json'))) {
  fs.copyFileSync(rootFile, path.join(metadataDir, 'root.json'));
}

const paths = fs.readFileSync(0, 'utf8').split('\n').filter((p) => p !== '');
const out = { refresh: { ok: false, error: '' }, results: [] };
const text = (e) => (e && e.message ? `${e.name}: ${e.message}` : String(e));

let updater;
try {
  // fetchRetry 0: a refusal is an answer, not a reason to ask again.
  updater = new Updater({ metadataBaseUrl, targetBaseUrl, metadataDir, targetDir, config: { fetchRetry: 0 } });
  await updater.refresh();
  out.refresh.ok = true;
} catch (e) {
  out.refresh.error = text(e);
}

let n = 0;
for (const p of paths) {
  const r = { path: p, found: false, length: 0, hashes: {}, downloaded: false, error: '' };
  if (out.refresh.ok) {
    try {
      const info = await updater.getTargetInfo(p);
      if (info) {
        r.found = true;
        r.length = info.length;
        r.hashes = info.hashes;
        n++;
        await updater.downloadTarget(info, path.join(targetDir, String(n)));
        r.downloaded = true;
      }
    } catch (e) {
      r.error = text(e);
    }
  } else {
    r.error = 'refresh failed: ' + out.refresh.error;
  }
  out.results.push(r);
}
process.stdout.write(JSON.stringify(out) + '\n');

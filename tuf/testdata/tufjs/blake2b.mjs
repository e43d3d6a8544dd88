// blake2b.mjs: BLAKE2b with a 32-byte digest (RFC 7693), written for this
// project's tests, and install(), which teaches node's crypto.createHash
// the TUF hash name "blake2b-256".
//
// Why: tuf-js (5.0.1, and @tufjs/models 5.0.2 under tuf-js 6.0.2) verifies
// a downloaded target against every hash its entry lists, each through
// crypto.createHash(name), and refuses the download when node does not
// know a name ("Hash algorithm blake2b-256 not supported",
// @tufjs/models/dist/file.js, TargetFile.verify). node's crypto knows
// blake2b512 only, and BLAKE2b-256 is not a truncation of it (the digest
// length is in the parameter block). resolve.mjs installs this only when
// asked (--blake2b-256); without it tuf-js is run exactly as published.
// The Go tests check this implementation against golang.org/x/crypto's.
import crypto from 'node:crypto';

const MASK = (1n << 64n) - 1n;
const IV = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];
const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & MASK;

// compress is F of RFC 7693 section 3.2: h is updated in place with the
// 128-byte block, t bytes having been hashed, last for the final block.
function compress(h, block, t, last) {
  const m = new Array(16);
  for (let i = 0; i < 16; i++) {
    let w = 0n;
    for (let j = 7; j >= 0; j--) w = (w << 8n) | BigInt(block[i * 8 + j]);
    m[i] = w;
  }
  const v = h.concat(IV);
  v[12] ^= t & MASK;
  v[13] ^= (t >> 64n) & MASK;
  if (last) v[14] ^= MASK;
  const g = (a, b, c, d, x, y) => {
    v[a] = (v[a] + v[b] + x) & MASK;
    v[d] = rotr(v[d] ^ v[a], 32n);
    v[c] = (v[c] + v[d]) & MASK;
    v[b] = rotr(v[b] ^ v[c], 24n);
    v[a] = (v[a] + v[b] + y) & MASK;
    v[d] = rotr(v[d] ^ v[a], 16n);
    v[c] = (v[c] + v[d]) & MASK;
    v[b] = rotr(v[b] ^ v[c], 63n);
  };
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

// Blake2b256 has the part of node's Hash interface tuf-js uses: update
// (returning the hash) and digest, with or without an encoding.
export class Blake2b256 {
  constructor() {
    this.h = IV.slice();
    this.h[0] ^= 0x01010020n; // digest length 32, no key, fanout 1, depth 1
    this.buf = new Uint8Array(128);
    this.n = 0;
    this.t = 0n;
  }

  update(data) {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    for (let i = 0; i < b.length; i++) {
      // A full block is compressed only once more data follows: the last
      // block, full or not, is compressed by digest with the final flag.
      if (this.n === 128) {
        this.t += 128n;
        compress(this.h, this.buf, this.t, false);
        this.n = 0;
      }
      this.buf[this.n++] = b[i];
    }
    return this;
  }

  digest(encoding) {
    this.t += BigInt(this.n);
    this.buf.fill(0, this.n);
    compress(this.h, this.buf, this.t, true);
    const out = Buffer.alloc(32);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 8; j++) out[i * 8 + j] = Number((this.h[i] >> BigInt(8 * j)) & 0xffn);
    }
    return encoding ? out.toString(encoding) : out;
  }
}

// install makes crypto.createHash('blake2b-256') return a Blake2b256;
// every other name goes to node's own implementation.
export function install() {
  const own = crypto.createHash;
  crypto.createHash = function createHash(name, options) {
    if (name === 'blake2b-256') return new Blake2b256();
    return own.call(this, name, options);
  };
}

/**
 * A QR code (ISO/IEC 18004) of a digit string, drawn on a canvas: numeric mode, error correction
 * level M, the smallest version 1–6 that holds it (a 60-digit safety number fits version 2; at
 * most 255 digits). No dependency: the page has no bundler and serves only its own files.
 *
 * @module ui/qr-code
 */

/** Versions 1–6 at level M: total codewords, error-correction codewords per block, blocks. */
const VERSIONS = [
  null,
  { total: 26, ecPerBlock: 10, blocks: 1 },
  { total: 44, ecPerBlock: 16, blocks: 1 },
  { total: 70, ecPerBlock: 26, blocks: 1 },
  { total: 100, ecPerBlock: 18, blocks: 2 },
  { total: 134, ecPerBlock: 24, blocks: 2 },
  { total: 172, ecPerBlock: 16, blocks: 4 },
];
const EC_LEVEL_M = 0b00;

/** GF(256) multiplication modulo x^8 + x^4 + x^3 + x^2 + 1. */
function gfMul(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

/** The Reed–Solomon generator polynomial of `degree` (coefficients, highest first, leading 1 dropped). */
function rsDivisor(degree) {
  const result = new Array(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < degree; j++) {
      result[j] = gfMul(result[j], root);
      if (j + 1 < degree) result[j] ^= result[j + 1];
    }
    root = gfMul(root, 0x02);
  }
  return result;
}

function rsRemainder(data, divisor) {
  const result = new Array(divisor.length).fill(0);
  for (const b of data) {
    const factor = b ^ result.shift();
    result.push(0);
    divisor.forEach((coef, i) => {
      result[i] ^= gfMul(coef, factor);
    });
  }
  return result;
}

/** Data codewords of `digits` in numeric mode for `version`, padded to its capacity. */
function dataCodewords(digits, version) {
  const { total, ecPerBlock, blocks } = VERSIONS[version];
  const capacity = total - ecPerBlock * blocks;
  const bits = [];
  const put = (value, length) => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(0b0001, 4); // numeric mode
  put(digits.length, 10); // character count (versions 1–9)
  for (let i = 0; i < digits.length; i += 3) {
    const group = digits.slice(i, i + 3);
    put(Number(group), [0, 4, 7, 10][group.length]);
  }
  if (bits.length > capacity * 8) return null;
  put(0, Math.min(4, capacity * 8 - bits.length)); // terminator
  put(0, (8 - (bits.length % 8)) % 8);
  const out = [];
  for (let i = 0; i < bits.length; i += 8) out.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let pad = 0xec; out.length < capacity; pad ^= 0xec ^ 0x11) out.push(pad);
  return out;
}

/** Splits data into blocks, adds each block's error correction and interleaves them. */
function withErrorCorrection(data, version) {
  const { total, ecPerBlock, blocks: count } = VERSIONS[version];
  const shortBlocks = count - (total % count);
  const shortLength = Math.floor(total / count);
  const divisor = rsDivisor(ecPerBlock);
  const blocks = [];
  for (let i = 0, k = 0; i < count; i++) {
    const dat = data.slice(k, k + shortLength - ecPerBlock + (i < shortBlocks ? 0 : 1));
    k += dat.length;
    const ec = rsRemainder(dat, divisor);
    if (i < shortBlocks) dat.push(0);
    blocks.push(dat.concat(ec));
  }
  const out = [];
  for (let i = 0; i < blocks[0].length; i++) {
    blocks.forEach((block, j) => {
      if (i !== shortLength - ecPerBlock || j >= shortBlocks) out.push(block[i]);
    });
  }
  return out;
}

const MASKS = [
  (x, y) => (x + y) % 2 === 0,
  (x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

/** The module grid before data: function patterns drawn, `fixed` marking them. */
function baseGrid(version) {
  const size = 17 + 4 * version;
  const dark = Array.from({ length: size }, () => new Array(size).fill(false));
  const fixed = Array.from({ length: size }, () => new Array(size).fill(false));
  const set = (x, y, value) => {
    dark[y][x] = value;
    fixed[y][x] = true;
  };
  for (let i = 0; i < size; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        set(x, y, d !== 2 && d !== 4);
      }
    }
  }
  if (version >= 2) {
    // One alignment pattern for versions 2–6, at (size-7, size-7).
    const c = size - 7;
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(c + dx, c + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
  }
  drawFormat(set, size, 0); // reserve the format areas (drawn for real once the mask is chosen)
  return { size, dark, fixed, set };
}

/** The 15 format bits (level M, `mask`) around the finders, and the dark module. */
function drawFormat(set, size, mask) {
  const data = (EC_LEVEL_M << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i) => ((bits >>> i) & 1) === 1;
  for (let i = 0; i <= 5; i++) set(8, i, bit(i));
  set(8, 7, bit(6));
  set(8, 8, bit(7));
  set(7, 8, bit(8));
  for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
  set(8, size - 8, true);
}

/** Places the codewords in the zigzag order, skipping function modules. */
function placeData(grid, codewords) {
  const { size, dark, fixed } = grid;
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (!fixed[y][x] && i < codewords.length * 8) {
          dark[y][x] = ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }
}

function applyMask(grid, mask) {
  const { size, dark, fixed } = grid;
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (!fixed[y][x] && MASKS[mask](x, y)) dark[y][x] = !dark[y][x];
}

/** The standard penalty score (runs, 2×2 blocks, finder-like patterns, dark balance). */
function penalty({ size, dark }) {
  let score = 0;
  const lines = [];
  for (let y = 0; y < size; y++) lines.push(dark[y]);
  for (let x = 0; x < size; x++) lines.push(dark.map((row) => row[x]));
  const finderLike = [true, false, true, true, true, false, true];
  for (const line of lines) {
    let run = 1;
    for (let i = 1; i <= size; i++) {
      if (i < size && line[i] === line[i - 1]) run++;
      else {
        if (run >= 5) score += run - 2;
        run = 1;
      }
    }
    for (let i = 0; i + 7 <= size; i++) {
      if (!finderLike.every((v, k) => line[i + k] === v)) continue;
      const lightBefore = i >= 4 && [1, 2, 3, 4].every((k) => !line[i - k]);
      const lightAfter = i + 11 <= size && [7, 8, 9, 10].every((k) => !line[i + k]);
      if (lightBefore || lightAfter) score += 40;
    }
  }
  for (let y = 0; y + 1 < size; y++) {
    for (let x = 0; x + 1 < size; x++) {
      const c = dark[y][x];
      if (dark[y][x + 1] === c && dark[y + 1][x] === c && dark[y + 1][x + 1] === c) score += 3;
    }
  }
  const total = size * size;
  const darkCount = dark.reduce((a, row) => a + row.filter(Boolean).length, 0);
  score += Math.floor(Math.abs(darkCount * 20 - total * 10) / total) * 10;
  return score;
}

/**
 * The QR code of `digits` (a string of 1–255 digits): `{size, version, mask, dark}` with
 * `dark[y][x]` true for a dark module.
 */
export function qrCodeOfDigits(digits) {
  if (typeof digits !== 'string' || !/^\d+$/.test(digits)) throw new TypeError('a QR code here holds digits only');
  for (let version = 1; version < VERSIONS.length; version++) {
    const data = dataCodewords(digits, version);
    if (!data) continue;
    const codewords = withErrorCorrection(data, version);
    let best = null;
    for (let mask = 0; mask < 8; mask++) {
      const grid = baseGrid(version);
      placeData(grid, codewords);
      applyMask(grid, mask);
      drawFormat(grid.set, grid.size, mask);
      const score = penalty(grid);
      if (!best || score < best.score) best = { score, grid, mask };
    }
    return { size: best.grid.size, version, mask: best.mask, dark: best.grid.dark };
  }
  throw new RangeError(`${digits.length} digits do not fit a version 1–6 QR code`);
}

/**
 * A canvas showing the QR code of `digits`, `scale` pixels per module with the 4-module quiet
 * zone, black on white. The canvas is an image whose text alternative is `label`.
 */
export function qrCanvas(digits, { scale = 4, label = digits } = {}) {
  const qr = qrCodeOfDigits(digits);
  const quiet = 4;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = (qr.size + 2 * quiet) * scale;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.textContent = label; // fallback content where canvas is not drawn
  canvas.dataset.version = String(qr.version);
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = '#000';
  for (let y = 0; y < qr.size; y++) for (let x = 0; x < qr.size; x++) if (qr.dark[y][x]) g.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
  return canvas;
}

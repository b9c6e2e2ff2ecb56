/**
 * JSON with 64-bit integers. `JSON.parse` turns 18446744073709551615 into a float; the test
 * vectors and cross-implementation fixtures hold u64 KIDs and counters, so this parser keeps
 * every integer outside Number's safe range as a bigint, and {@link stringify} writes bigints as
 * plain JSON numbers (what serde_json reads as u64).
 *
 * @module tools/json64
 */

/** Parses JSON text; integers beyond ±(2^53 - 1) become bigints. Throws SyntaxError on bad JSON. */
export function parse(text) {
  // Quote big integer literals that stand as values (after `:`, `[` or `,`), outside strings,
  // tag them, then let JSON.parse do the rest and turn the tagged strings into bigints.
  let out = '';
  let i = 0;
  const TAG = '\u0000big:';
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9eE.+-]/.test(text[j])) j++;
      const literal = text.slice(i, j);
      if (/^-?\d+$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
        out += JSON.stringify(TAG + literal);
      } else {
        out += literal;
      }
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out, (_key, value) =>
    typeof value === 'string' && value.startsWith(TAG) ? BigInt(value.slice(TAG.length)) : value,
  );
}

/** JSON.stringify that writes bigints as JSON numbers. */
export function stringify(value, space = 2) {
  const marks = [];
  const text = JSON.stringify(
    value,
    (_key, v) => {
      if (typeof v !== 'bigint') return v;
      marks.push(v.toString());
      return `\u0000big:${marks.length - 1}`;
    },
    space,
  );
  return text.replace(/"\\u0000big:(\d+)"/g, (_m, index) => marks[Number(index)]);
}

/**
 * Text a request may carry. Control characters (C0, DEL, C1), format characters (zero-width
 * spaces and joiners, bidi controls, the BOM U+FEFF, soft hyphen...), line and paragraph
 * separators, every space other than U+0020 (NBSP, U+3000...), lone surrogates and the invisible
 * Hangul fillers never belong in a site URL, a host, a Key Vault name or an app's display name:
 * they hide a different value behind the same look (and `String.prototype.trim` or the WHATWG URL
 * parser would silently drop some of them, turning one input into another key). Pure.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\u115F\u1160\u3164\uFFA0\u2800]|(?! )\p{Zs}/u;

/** The problem with a string (first unsafe character, by code point and position), or undefined when it is clean. */
export function unsafeTextProblem(text: string): string | undefined {
  const match = UNSAFE.exec(text);
  if (!match) return undefined;
  const codePoint = match[0].codePointAt(0)!;
  const name = `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
  return `contains ${name} at position ${match.index}, a control, invisible or non-ASCII space character; remove it`;
}

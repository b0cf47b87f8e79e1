//! A JSON cursor for the vast.ai fast path ([`super::vastai`]): it walks a payload's
//! text once, hands out the raw text of the few values wanted and skips the rest,
//! without building anything.
//!
//! Invariant: the cursor never accepts what serde_json would refuse at the same
//! place. Every token is checked against the JSON grammar as serde_json's
//! `ignore_value` checks it (numbers, literals, strings with their escapes and no
//! control character, commas, colons); where it is unsure it answers `None`, and its
//! caller then falls back to serde_json. It may refuse more than serde_json (a very
//! deep nesting), never less. The text is a `&str`, so UTF-8 was checked once, up
//! front, by the caller.

use serde::Deserialize;

/// Nesting deeper than this is left to serde_json (the scan gives up).
const MAX_DEPTH: u32 = 64;

/// A position in a JSON text.
pub(super) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// Objects and arrays open around the value being skipped ([`Cursor::value`]).
    depth: u32,
}

/// A string token: its content as written (escapes not decoded) and whether it
/// holds an escape. Without one, `raw` is the string's value.
pub(super) struct Str<'a> {
    pub raw: &'a str,
    pub escaped: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Cursor {
            text,
            pos: 0,
            depth: 0,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Back to `pos`, a position this cursor was at.
    pub fn rewind(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The next byte after whitespace (not consumed), `None` at the end.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        let mut i = self.pos;
        while let Some(&b) = bytes.get(i) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                self.pos = i;
                return Some(b);
            }
            i += 1;
        }
        self.pos = i;
        None
    }

    /// Consume `b`, the next byte after whitespace; `None` if it is another.
    #[inline]
    pub fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// The string token next (after whitespace).
    #[inline]
    pub fn string(&mut self) -> Option<Str<'a>> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let (start, mut i, mut escaped) = (self.pos, self.pos, false);
        loop {
            i = special(bytes, i);
            match *bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i = self.escape(i + 1)?;
                }
                // serde_json refuses control characters in strings.
                _ => return None,
            }
        }
        self.pos = i + 1;
        // Both ends are at ASCII quotes, hence at char boundaries.
        Some(Str {
            raw: &self.text[start..i],
            escaped,
        })
    }

    /// The position after the escape whose letter is at `i` (past a backslash), if
    /// serde_json accepts it: one of `"\/bfnrt`, or `u` and four hex digits.
    fn escape(&self, i: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        match *bytes.get(i)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
            b'u' => {
                let hex = bytes.get(i + 1..i + 5)?;
                hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 5)
            }
            _ => None,
        }
    }

    /// The number token next (after whitespace), checked against the JSON grammar:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    pub fn number(&mut self) -> Option<&'a str> {
        self.peek()?;
        let bytes = self.text.as_bytes();
        // The end of the digits from `i` on, `None` if there is none.
        let digits = |i: usize| {
            let n = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            (n > 0).then_some(i + n)
        };
        let start = self.pos;
        let mut i = start + usize::from(bytes[start] == b'-');
        i = match bytes.get(i)? {
            b'0' => i + 1,
            b'1'..=b'9' => digits(i)?,
            _ => return None,
        };
        if bytes.get(i) == Some(&b'.') {
            i = digits(i + 1)?;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1 + usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
            i = digits(i)?;
        }
        // A digit right after a leading 0 ("01") is refused by serde_json, and
        // refused here by the caller, which wants a comma or a bracket next.
        self.pos = i;
        Some(&self.text[start..i])
    }

    /// `null` next (consumed), or not (nothing consumed).
    pub fn null(&mut self) -> bool {
        let found = self.peek() == Some(b'n') && self.text[self.pos..].starts_with("null");
        if found {
            self.pos += 4;
        }
        found
    }

    /// Skip the value next, whatever it is; its text (no surrounding whitespace).
    pub fn value(&mut self) -> Option<&'a str> {
        let first = self.peek()?;
        let start = self.pos;
        match first {
            b'"' => {
                self.string()?;
            }
            b'{' => self.nested(|c| c.members(|c, _| c.skip()))?,
            b'[' => self.nested(|c| c.elements(Self::skip))?,
            b'-' | b'0'..=b'9' => {
                self.number()?;
            }
            _ => self.literal()?,
        }
        Some(&self.text[start..self.pos])
    }

    /// Skip the value next, whatever it is.
    pub fn skip(&mut self) -> Option<()> {
        self.value().map(|_| ())
    }

    /// `true`, `false` or `null`.
    fn literal(&mut self) -> Option<()> {
        let rest = &self.text[self.pos..];
        let len = ["true", "false", "null"]
            .iter()
            .find(|w| rest.starts_with(*w))?
            .len();
        self.pos += len;
        Some(())
    }

    /// `inner` one level deeper, or `None` past [`MAX_DEPTH`].
    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let done = inner(self);
        self.depth -= 1;
        done
    }

    /// The object next: `member` is called with each key, the cursor after its
    /// colon, and must consume the member's value.
    pub fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Str<'a>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.items(b'}', |c| {
            let key = c.string()?;
            c.eat(b':')?;
            member(c, key)
        })
    }

    /// The array next: `element` is called before each element and must consume it.
    pub fn elements(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.items(b']', element)
    }

    /// Comma-separated items up to `close` (the opening byte eaten): `item` is called
    /// before each and must consume it.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(())
    }
}

/// The position of the first `"`, backslash or control character in `bytes` from
/// `i` on (`bytes.len()` if none), eight bytes at a time as serde_json finds it:
/// in each word, the lowest byte flagged is a true match (a borrow only flags
/// bytes above a match).
#[inline]
fn special(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let found = (control
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & (ONES << 7);
        if found != 0 {
            return i + found.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))
        .unwrap_or(bytes.len() - i)
}

/// `10^k` for the exact powers of ten (`k` ≤ 22), the values serde_json divides by.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A number token ([`Cursor::number`]) as an `f64`, bit for bit as serde_json reads
/// it into an `f64` field (without its `float_roundtrip` feature); `None` where
/// serde_json fails (`1e999`).
///
/// Done here only where the result is provably the same: an integer of at most 19
/// digits (serde_json reads it as a `u64` or `i64` and converts it with `as`, which
/// rounds to nearest the same way on both signs), or a decimal without an exponent
/// whose digits make a significand of at most 2^53 with at most 22 after the point:
/// significand and power of ten are then exact `f64`s and their quotient is
/// correctly rounded, which is what serde_json computes. Anything else is
/// handed to serde_json.
pub(super) fn f64_of(number: &str) -> Option<f64> {
    let negative = number.starts_with('-');
    // Digits read, the significand they make (exact up to 19 digits), and where
    // the decimal point was (digits before it).
    let (mut digits, mut significand, mut point) = (0, 0u64, None);
    for &b in &number.as_bytes()[usize::from(negative)..] {
        match b {
            b'0'..=b'9' => {
                significand = significand
                    .wrapping_mul(10)
                    .wrapping_add(u64::from(b - b'0'));
                digits += 1;
            }
            b'.' => point = Some(digits),
            // An exponent.
            _ => return serde_f64(number),
        }
    }
    let magnitude = match point {
        _ if digits > 19 => return serde_f64(number),
        None => significand as f64,
        Some(before) if significand <= 1 << 53 && digits - before < POW10.len() => {
            significand as f64 / POW10[digits - before]
        }
        Some(_) => return serde_f64(number),
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// serde_json's own reading of a number token into an `f64`.
fn serde_f64(number: &str) -> Option<f64> {
    let mut de = serde_json::Deserializer::from_str(number);
    let value = f64::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

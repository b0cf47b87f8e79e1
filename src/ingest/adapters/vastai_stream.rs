//! The vast.ai scan over a stream ([`scan`]): the payload is read a window at a
//! time, never whole, and walked with the same [`Cursor`] steps as
//! [`super::vastai`]'s scan of a whole text (`members` of the top-level object,
//! `elements` of `offers`, each offer by `scan_offer`).
//!
//! Invariant: it gives the rows the whole-text scan gives, or `None` wherever that
//! scan would give `None` (and, more rarely, where it might not: the caller then reads
//! the payload whole). Each step runs on the window's text; a step that fails, or that
//! ends where the window ends, is run again on a longer window until the stream ends,
//! so a token cut by the window's end is never taken for a whole one. UTF-8 is checked
//! as the text arrives; invalid UTF-8 gives `None`, as it does for the whole text.

use std::io::{self, BufRead};

use super::vastai::{push_rows, scan_one};
use super::vastai_scan::Cursor;
use super::ParseCtx;
use crate::model::Offers;

/// Bytes read into the window at a time.
const READ: usize = 1 << 20;

/// A window on a JSON text read from a stream.
struct Window<'r> {
    body: &'r mut dyn BufRead,
    /// The text read and not yet consumed (from `start` on).
    text: String,
    start: usize,
    /// Bytes read that end in an incomplete UTF-8 character.
    pending: Vec<u8>,
    eof: bool,
    /// Bytes read at a time ([`READ`]; less in tests, to cut every token).
    read: usize,
}

impl Window<'_> {
    /// Run `step` on the window's text from the current position; `step` is told
    /// whether the stream has ended. `Some` moves the position to where the step's
    /// cursor ended; `None` reads more and runs it again, until the stream ends. Each
    /// retry reads twice as much as the one before, so a step that fails for good
    /// (the scan gives up) rereads its window a logarithmic number of times.
    fn step<T>(
        &mut self,
        mut step: impl FnMut(&mut Cursor, bool) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let mut want = self.read;
        loop {
            let mut c = Cursor::new(&self.text[self.start..]);
            if let Some(t) = step(&mut c, self.eof) {
                self.start += c.pos();
                return Ok(Some(t));
            }
            if self.eof || !self.more(want)? {
                return Ok(None);
            }
            want = want.saturating_mul(2);
        }
    }

    /// Read about `want` bytes more text; false when the bytes read are not UTF-8.
    fn more(&mut self, want: usize) -> io::Result<bool> {
        self.text.drain(..self.start);
        self.start = 0;
        let mut read = 0;
        while read < want {
            let chunk = self.body.fill_buf()?;
            if chunk.is_empty() {
                self.eof = true;
                break;
            }
            self.pending.extend_from_slice(chunk);
            let n = chunk.len();
            self.body.consume(n);
            read += n;
        }
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            // An incomplete character at the end waits for its other bytes.
            Err(e) if e.error_len().is_none() && !self.eof => e.valid_up_to(),
            Err(_) => return Ok(false),
        };
        let text = std::str::from_utf8(&self.pending[..valid]).expect("checked above");
        self.text.push_str(text);
        self.pending.drain(..valid);
        Ok(true)
    }
}

/// `read`'s result only where the window holds more than it read (or the stream
/// has ended): a value read up to the window's end may go on past it.
fn whole<'a, T>(
    c: &mut Cursor<'a>,
    eof: bool,
    read: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
) -> Option<T> {
    let t = read(c)?;
    (eof || c.peek().is_some()).then_some(t)
}

/// The byte next, consumed: a comma or a closing bracket after an item.
fn separator(c: &mut Cursor, eof: bool) -> Option<u8> {
    let b = whole(c, eof, Cursor::peek)?;
    c.eat(b);
    Some(b)
}

/// The rows of a vast.ai payload read from `body`, as the whole-text scan reads them;
/// `None` where that scan gives up (the caller then reads the payload whole).
pub(super) fn scan(body: &mut dyn BufRead, ctx: &ParseCtx) -> io::Result<Option<Offers>> {
    scan_reading(body, ctx, READ)
}

/// [`scan`], reading about `read` bytes at a time.
pub(super) fn scan_reading(
    body: &mut dyn BufRead,
    ctx: &ParseCtx,
    read: usize,
) -> io::Result<Option<Offers>> {
    let mut w = Window {
        body,
        text: String::new(),
        start: 0,
        pending: Vec::new(),
        eof: false,
        read,
    };
    let mut rows = Offers::default();
    let opened = w.step(|c, eof| whole(c, eof, |c| c.eat(b'{')))?;
    // An object without `offers` fails the whole-text scan too.
    let empty = w.step(|c, eof| whole(c, eof, |c| Some(c.eat(b'}').is_some())))?;
    if opened.is_none() || empty != Some(false) {
        return Ok(None);
    }
    let mut offers = false;
    loop {
        let key = w.step(|c, eof| {
            whole(c, eof, |c| {
                let key = c.string()?;
                c.eat(b':')?;
                Some((key.raw == "offers", key.escaped))
            })
        })?;
        let read = match key {
            Some((true, false)) if !offers => {
                offers = true;
                stream_offers(&mut w, &mut rows, ctx)?
            }
            Some((false, false)) => w.step(|c, eof| whole(c, eof, Cursor::skip))?,
            // Cut off, an escaped key (it may spell `offers`), or a second `offers`
            // (serde_json fails on it).
            _ => None,
        };
        match read.and(w.step(separator)?) {
            Some(b',') => {}
            Some(b'}') => break,
            _ => return Ok(None),
        }
    }
    // Only whitespace may follow, to the end of the stream.
    let blank = w.step(|c, eof| {
        if c.at_end() {
            eof.then_some(true)
        } else {
            Some(false)
        }
    })?;
    Ok((offers && blank == Some(true)).then_some(rows))
}

/// The `offers` array next, an element at a time, its rows pushed onto `rows`;
/// `None` when the scan gives up.
fn stream_offers(w: &mut Window, rows: &mut Offers, ctx: &ParseCtx) -> io::Result<Option<()>> {
    let empty = w.step(|c, eof| {
        c.eat(b'[')?;
        whole(c, eof, |c| Some(c.eat(b']').is_some()))
    })?;
    match empty {
        None => return Ok(None),
        Some(true) => return Ok(Some(())),
        Some(false) => {}
    }
    loop {
        let next = w.step(|c, eof| {
            let offer = scan_one(c)?;
            let next = separator(c, eof)?;
            // The element is whole: its rows.
            push_rows(rows, offer, ctx);
            Some(next)
        })?;
        match next {
            Some(b',') => {}
            Some(b']') => return Ok(Some(())),
            _ => return Ok(None),
        }
    }
}

//! The reports folder as a whole: `<out>/index.html` (the latest week's headlines
//! first, then every week, newest first) and `<out>/feed.xml` (Atom, one entry per
//! week), both rebuilt from the weeks' `summary.json` files.
//!
//! Invariants: no clock (times come from each summary's `generated_at`); a folder
//! that is not an ISO week or has no readable summary is left out; every text in
//! the feed is XML-escaped (`esc`), and its HTML content escaped once more.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::ReportError;
use crate::store::fsutil::write_atomic;
use crate::week::IsoWeek;

use super::html::{index_page, IndexEntry};
use super::text::{label, NO_HEADLINE};

/// Escape text for HTML or XML element content and attribute values (the Atom
/// feed; the HTML pages are escaped by maud, which leaves `'` as it is).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Every week under `out` that has a readable summary, newest first.
fn summaries(out: &Path) -> Vec<(String, serde_json::Value)> {
    let mut weeks: Vec<(String, serde_json::Value)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if IsoWeek::parse(&name).is_err() {
                continue;
            }
            if let Ok(text) = std::fs::read(e.path().join("summary.json")) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                    weeks.push((name, v));
                }
            }
        }
    }
    weeks.sort_by(|a, b| b.0.cmp(&a.0));
    weeks
}

fn is_sim(v: &serde_json::Value) -> bool {
    v["simulated"] == serde_json::Value::Bool(true)
}

fn heads_of(v: &serde_json::Value) -> Vec<&str> {
    v["headlines"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
        .unwrap_or_default()
}

const INDEX_TITLE: &str = "gpurent weekly reports: GPU rental prices, China vs US";

/// Rewrite `<out>/index.html` (the latest week's headlines first, then every week,
/// newest first) and `<out>/feed.xml` (Atom, one entry per week).
pub fn write_index(out: &Path) -> Result<(), ReportError> {
    let weeks = summaries(out);
    let any_sim = weeks.iter().any(|w| is_sim(&w.1));
    let entries: Vec<IndexEntry> = weeks
        .iter()
        .map(|(w, v)| IndexEntry {
            week: w,
            simulated: is_sim(v),
            headlines: heads_of(v),
        })
        .collect();
    let page = index_page(&label(any_sim, INDEX_TITLE), &entries);
    write_atomic(&out.join("index.html"), page.as_bytes())?;
    Ok(write_atomic(
        &out.join("feed.xml"),
        atom(&weeks).as_bytes(),
    )?)
}

/// The Atom feed of the weeks (newest first). Times come from each summary's
/// `generated_at`, never from the clock.
pub fn atom(weeks: &[(String, serde_json::Value)]) -> String {
    let any_sim = weeks.iter().any(|w| is_sim(&w.1));
    let updated = |v: &serde_json::Value| v["generated_at"].as_str().unwrap_or("").to_string();
    let latest = weeks
        .iter()
        .map(|w| updated(&w.1))
        .max()
        .unwrap_or_else(|| "1970-01-01T00:00:00+00:00".into());
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <title>{}</title>\n  <id>urn:gpurent:weekly-reports</id>\n  <updated>{}</updated>\n  <author><name>gpurent</name></author>\n  <link rel=\"alternate\" type=\"text/html\" href=\"index.html\"/>\n  <link rel=\"self\" href=\"feed.xml\"/>\n",
        esc(&label(any_sim, INDEX_TITLE)),
        esc(&latest)
    );
    for (w, v) in weeks {
        let heads = heads_of(v);
        let first = heads.first().copied().unwrap_or(NO_HEADLINE);
        let title = label(is_sim(v), &format!("{w}: {first}"));
        let items: String = heads
            .iter()
            .take(6)
            .map(|h| format!("<li>{}</li>", esc(h)))
            .collect();
        let _ = write!(
            s,
            "  <entry>\n    <title>{}</title>\n    <id>urn:gpurent:weekly-report:{}</id>\n    <updated>{}</updated>\n    <link rel=\"alternate\" type=\"text/html\" href=\"{}/index.html\"/>\n    <summary>{}</summary>\n    <content type=\"html\">{}</content>\n  </entry>\n",
            esc(&title),
            esc(w),
            esc(&updated(v)),
            esc(w),
            esc(&format!("{} to {}. {first}", v["from"].as_str().unwrap_or(""), v["to"].as_str().unwrap_or(""))),
            esc(&format!("<ul>{items}</ul>"))
        );
    }
    s.push_str("</feed>\n");
    s
}

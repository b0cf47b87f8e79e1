//! The week's `report.md`, from the same `WeekPage` as the HTML page, and the two
//! ways feed-supplied text is made literal in Markdown (`md_text`, `md_code`).
//!
//! Invariants: every feed-supplied string is escaped (`md_text`) or a code span
//! (`md_code`); the table of statistics leaves out the 10% trimmed mean and marks a
//! thin cell in its offers column (as the page always did).

use std::fmt::Write as _;

use super::page::{Part, StatLine, Table, WeekPage};
use super::text::NO_HEADLINE;
use super::SIMULATED;

/// Feed-supplied text as a Markdown code span, so renderers show it literally (no
/// HTML, no emphasis): a backtick fence longer than any run inside, one line.
pub fn md_code(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest = one_line
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {one_line} {fence}")
}

/// Feed-supplied text inside Markdown prose: characters with a Markdown or HTML
/// meaning are backslash-escaped, so renderers show them literally.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>&|#".contains(c) {
            out.push('\\');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The week's Markdown: the sections of `WeekPage`, in the HTML page's order.
pub fn week_page(p: &WeekPage) -> String {
    let mut s = String::new();
    top(&mut s, p);
    for (title, t) in &p.tables {
        let _ = writeln!(s, "\n## {title}\n");
        if t.rows.is_empty() {
            let _ = writeln!(s, "None this week.");
        } else {
            s.push_str(&table(t));
        }
    }
    alerts(&mut s, p);
    let _ = writeln!(s, "\n## Charts\n");
    for (c, _) in p.charts {
        let _ = writeln!(s, "![{c}](charts/{c}.svg)");
    }
    for n in p.chart_notes {
        let _ = writeln!(s, "\n{n}");
    }
    let _ = writeln!(
        s,
        "\n## Statistics (USD per GPU-hour)\n\n{}",
        statistics(&p.statistics)
    );
    let _ = writeln!(s, "## Coverage\n");
    for line in &p.coverage {
        let _ = writeln!(s, "- {}", parts(line));
    }
    s.push('\n');
    let _ = writeln!(s, "## Methodology\n\n{}", p.method);
    s
}

/// The title, simulated-data label, period, banners and headlines.
fn top(s: &mut String, p: &WeekPage) {
    let _ = writeln!(s, "# {}\n", p.title);
    if p.simulated {
        let _ = writeln!(
            s,
            "> **{SIMULATED}.** This report was generated from simulated providers.\n"
        );
    }
    let _ = writeln!(s, "{}\n", p.period);
    for b in &p.banners {
        let _ = writeln!(s, "> **{}**\n", md_text(b));
    }
    let _ = writeln!(s, "## Headlines\n");
    if p.headlines.is_empty() {
        let _ = writeln!(s, "{NO_HEADLINE}\n");
    }
    for h in p.headlines {
        let _ = writeln!(s, "- {}", md_text(h));
    }
}

/// The week's alert firings, when there are any.
fn alerts(s: &mut String, p: &WeekPage) {
    if p.alerts.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Alerts\n");
    for f in p.alerts {
        let _ = writeln!(
            s,
            "- {} (rule {}, {})",
            md_text(&f.message),
            md_code(&f.rule),
            f.fired_at
        );
    }
}

fn table(t: &Table) -> String {
    let mut s = format!("| {} |\n|", t.head.join(" | "));
    s.push_str(&"---|".repeat(t.head.len()));
    s.push('\n');
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(|c| md_text(c)).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

/// The statistics without the trimmed mean; "(thin)" beside a thin cell's offers.
fn statistics(rows: &[StatLine]) -> String {
    let mut s = String::from(
        "| model | bloc | class | offers | providers | provider-balanced | p25 | median | p75 | min | p90 |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{} | {} | {} |",
            r.gpu_model,
            r.bloc,
            r.price_class,
            r.offers,
            if r.thin { " (thin)" } else { "" },
            r.providers,
            r.usd[..6].join(" | ")
        );
    }
    s
}

/// A coverage line: our words as they are, a feed's names as code spans.
fn parts(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Code(c) => md_code(c),
        })
        .collect()
}

#[cfg(test)]
mod md_tests {
    use super::*;

    #[test]
    fn md_code_spans() {
        let check = |input: &str, expected: &str| assert_eq!(md_code(input), expected, "{input}");
        check("H100", "` H100 `");
        check("<script>alert(1)</script>", "` <script>alert(1)</script> `");
        check("a`b", "`` a`b ``");
        check("a\nb", "` a b `");
    }

    #[test]
    fn md_text_escapes_markup() {
        let check = |input: &str, expected: &str| assert_eq!(md_text(input), expected, "{input}");
        check("aws, gcp", "aws, gcp");
        check("<script>", "\\<script\\>");
        check("on_demand *x* [y]", "on\\_demand \\*x\\* \\[y\\]");
        check("a|b\nc", "a\\|b c");
    }
}

//! The HTML pages, written with maud: the week's page from a `WeekPage`, and the
//! reports index. maud escapes every interpolated string (`&`, `<`, `>`, `"`), so
//! text a feed supplied cannot become markup; `PreEscaped` appears twice only, for
//! the fixed stylesheet and for the chart SVG (written by `chart` from escaped text).
//!
//! Invariants: the page is self-contained (inline CSS and SVG, no script); the
//! bytes are those the earlier hand-written pages had (the `"\n"` literals keep
//! their line breaks).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::page::{Part, StatLine, Table, WeekPage};
use super::text::NO_HEADLINE;
use super::SIMULATED;

const CSS: &str = "body{font-family:'DejaVu Sans',system-ui,sans-serif;max-width:1000px;margin:0 auto;padding:12px;color:#222;line-height:1.45}li,p,h1,h2{overflow-wrap:anywhere}figure{margin:1em 0;overflow-x:auto}figure svg{min-width:600px}.note{color:#555;font-style:italic}h1{font-size:1.5em}svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}.sim{background:#fff3cd;border:2px solid #a37000;padding:8px;font-weight:bold}.thin{color:#767676}";

/// `<head>`: charset, viewport, title, the Atom link when asked, the stylesheet.
fn head(title: &str, atom_link: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width,initial-scale=1";
            title { (title) }
            @if atom_link {
                link rel="alternate" type="application/atom+xml" href="feed.xml" title="gpurent weekly reports";
            }
            // PreEscaped: CSS is a constant of this file (its quotes must stay quotes).
            style { (PreEscaped(CSS)) }
        }
    }
}

/// The week's page: head, headlines, tables, alerts, charts, statistics, coverage,
/// method.
pub fn week_page(p: &WeekPage) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            (head(&p.title, false))
            body {
                "\n" h1 { (p.title) } "\n"
                (top(p))
                @for (title, t) in &p.tables { (table_section(title, t)) }
                (alerts(p))
                (charts(p))
                (statistics(&p.statistics))
                h2 { "Coverage" }
                ul { "\n" @for line in &p.coverage { li { (parts(line)) } "\n" } }
                "\n" h2 { "Methodology" } p { (p.method) } "\n"
            }
        }
        "\n"
    }
    .into_string()
}

/// The simulated-data label, period, banners and headlines.
fn top(p: &WeekPage) -> Markup {
    html! {
        @if p.simulated {
            p.sim { (SIMULATED) ". Every number on this page comes from simulated providers." } "\n"
        }
        p { (p.period) } "\n"
        @for b in &p.banners { p.sim { (b) } "\n" }
        h2 { "Headlines" }
        ul {
            "\n"
            @if p.headlines.is_empty() { li { (NO_HEADLINE) } "\n" }
            @for h in p.headlines { li { (h) } "\n" }
        }
        "\n"
    }
}

/// One comparison table under its heading, or "None this week."
fn table_section(title: &str, t: &Table) -> Markup {
    html! {
        h2 { (title) } "\n"
        @if t.rows.is_empty() {
            p { "None this week." } "\n"
        } @else {
            table {
                tr { @for h in &t.head { th { (h) } } } "\n"
                @for r in &t.rows { tr { @for c in r { td { (c) } } } "\n" }
            }
            "\n"
        }
    }
}

/// The week's alert firings, when there are any.
fn alerts(p: &WeekPage) -> Markup {
    html! {
        @if !p.alerts.is_empty() {
            h2 { "Alerts" }
            ul {
                "\n"
                @for f in p.alerts {
                    li { (f.message) " (rule " code { (f.rule) } ", " (f.fired_at) ")" } "\n"
                }
            }
            "\n"
        }
    }
}

/// The charts, inline, then one note for each chart left out.
fn charts(p: &WeekPage) -> Markup {
    html! {
        h2 { "Charts" } "\n"
        @for (name, svg) in p.charts {
            // PreEscaped: the SVG is written by crate::report::chart, which escapes
            // every text it holds; it has no XML prolog.
            figure id=(name) { (PreEscaped(svg.trim())) } "\n"
        }
        @for n in p.chart_notes { p.note { (n) } "\n" }
    }
}

/// The statistics table, every column, thin cells greyed.
fn statistics(rows: &[StatLine]) -> Markup {
    const HEAD: [&str; 12] = [
        "model",
        "bloc",
        "class",
        "offers",
        "providers",
        "provider-balanced",
        "p25",
        "median",
        "p75",
        "min",
        "p90",
        "10% trimmed mean",
    ];
    html! {
        h2 { "Statistics (USD per GPU-hour)" }
        table {
            tr { @for h in HEAD { th { (h) } } } "\n"
            @for r in rows {
                tr class=[r.thin.then_some("thin")] {
                    td { (r.gpu_model) } td { (r.bloc) } td { (r.price_class) }
                    td { (r.offers) } td { (r.providers) }
                    @for v in &r.usd { td { (v) } }
                }
                "\n"
            }
        }
    }
}

/// A coverage line: our words as text, a feed's names as code.
fn parts(parts: &[Part]) -> Markup {
    html! {
        @for part in parts {
            @match part {
                Part::Text(t) => (t),
                Part::Code(c) => code { (c) },
            }
        }
    }
}

/// One week on the reports index.
pub struct IndexEntry<'a> {
    pub week: &'a str,
    pub simulated: bool,
    pub headlines: Vec<&'a str>,
}

/// The reports index: the latest week's headlines (at most six), then every week,
/// newest first, with its first headline. `weeks` is newest first.
pub fn index_page(title: &str, weeks: &[IndexEntry]) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            (head(title, true))
            body {
                h1 { (title) } "\n"
                @if let Some(w) = weeks.first() {
                    h2 { "Latest: " (week_link(w)) }
                    ul {
                        "\n"
                        @if w.headlines.is_empty() { li { (NO_HEADLINE) } "\n" }
                        @for h in w.headlines.iter().take(6) { li { (h) } "\n" }
                    }
                    "\n"
                } @else {
                    p { "No weekly report has been written yet." } "\n"
                }
                h2 { "Every week, newest first" }
                ul {
                    "\n"
                    @for w in weeks {
                        li { (week_link(w)) ": " (w.headlines.first().copied().unwrap_or(NO_HEADLINE)) } "\n"
                    }
                }
                p { a href="feed.xml" { "Atom feed" } }
            }
        }
        "\n"
    }
    .into_string()
}

/// The week's link, and its simulated-data tag.
fn week_link(w: &IndexEntry) -> Markup {
    html! {
        a href={ (w.week) "/index.html" } { (w.week) }
        @if w.simulated { " " strong { "[" (SIMULATED) "]" } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::alerts::{Firing, Kind};

    const HOSTILE: &str = r#"<script>alert("x")</script> & 'q' <img src=x onerror=alert(1)>"#;
    /// HOSTILE as maud escapes it (`'` needs no escape in content or in a
    /// double-quoted attribute).
    const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'q' &lt;img src=x onerror=alert(1)&gt;";

    fn firing(text: &str) -> Firing {
        Firing {
            key: text.into(),
            rule: text.into(),
            kind: Kind::FeedFailed,
            subject: text.into(),
            week: "2024-W41".into(),
            fired_at: text.into(),
            message: text.into(),
            numbers: Default::default(),
            delivery: text.into(),
        }
    }

    /// A page with the hostile text in every slot a feed can reach.
    fn hostile_page(heads: &[String], fired: &[Firing], notes: &[String]) -> String {
        let t = || Table {
            head: vec!["model"],
            rows: vec![vec![HOSTILE.to_string()]],
        };
        let page = WeekPage {
            title: HOSTILE.into(),
            simulated: true,
            period: HOSTILE.into(),
            banners: vec![HOSTILE.into()],
            headlines: heads,
            tables: vec![("ratios", t()), ("pairs", t())],
            alerts: fired,
            charts: &[],
            chart_notes: notes,
            statistics: vec![StatLine {
                gpu_model: HOSTILE.into(),
                bloc: HOSTILE.into(),
                price_class: HOSTILE.into(),
                offers: 1,
                providers: 1,
                thin: true,
                usd: std::array::from_fn(|_| HOSTILE.to_string()),
            }],
            coverage: vec![vec![Part::Text(HOSTILE.into()), Part::Code(HOSTILE.into())]],
            method: HOSTILE.into(),
        };
        week_page(&page)
    }

    #[test]
    fn week_page_escapes_every_feed_string() {
        let heads = vec![HOSTILE.to_string()];
        let fired = vec![firing(HOSTILE)];
        let notes = vec![HOSTILE.to_string()];
        let html = hostile_page(&heads, &fired, &notes);
        let lower = html.to_ascii_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img"),
            "{html}"
        );
        // title twice, period, banner, headline, 2 table cells, alert message, rule
        // and time, note, 3 + 7 statistics cells, coverage text and code, method.
        assert_eq!(html.matches(ESCAPED).count(), 24, "{html}");
        assert!(html.contains(&format!("{ESCAPED}<code>{ESCAPED}</code></li>")));
        assert!(html.contains(&format!("(rule <code>{ESCAPED}</code>, {ESCAPED})</li>")));
    }

    #[test]
    fn index_page_escapes_headlines_and_weeks() {
        let entries = [IndexEntry {
            week: HOSTILE,
            simulated: true,
            headlines: vec![HOSTILE],
        }];
        let html = index_page(HOSTILE, &entries);
        let lower = html.to_ascii_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img"),
            "{html}"
        );
        assert!(html.contains(&format!("<a href=\"{ESCAPED}/index.html\">{ESCAPED}</a>")));
        // title twice, latest link (href, text), headline, list link (href, text), line.
        assert_eq!(html.matches(ESCAPED).count(), 8, "{html}");
    }
}

//! The words and numbers of a report: number formats, the simulated-data label, the
//! no-CN/no-US banners, the ranked headlines and the index headline, the method.
//!
//! Invariants: pure functions of the week's analysis (no I/O, no clock); every
//! number has a fixed format (`n/a` when missing) and a unit in the sentence.

use std::fmt::Write as _;

use crate::analysis::{self, StatRow, WeekAnalysis};

use super::SIMULATED;

/// `$1.23`, or `n/a` for a missing value.
pub fn usd(v: f64) -> String {
    if v.is_finite() {
        format!("${v:.2}")
    } else {
        "n/a".into()
    }
}

pub(super) fn num(v: f64, places: usize) -> String {
    if v.is_finite() {
        format!("{v:.places$}")
    } else {
        "n/a".into()
    }
}

fn pct1(v: f64) -> String {
    if v.is_finite() {
        format!("{:+.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:+.0}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

fn prev_row<'a>(a: &'a WeekAnalysis, model: &str, bloc: &str, class: &str) -> Option<&'a StatRow> {
    a.prev_rows
        .iter()
        .find(|r| r.gpu_model == model && r.bloc == bloc && r.price_class == class)
}

/// Provider names, at most four, then how many more.
fn names(p: &[String]) -> String {
    let mut s = p.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
    if p.len() > 4 {
        let _ = write!(s, " +{} more", p.len() - 4);
    }
    s
}

fn side(v: f64, providers: &[String], offers: u32) -> String {
    let plural = if offers == 1 { "" } else { "s" };
    format!("{} ({}; {offers} offer{plural})", usd(v), names(providers))
}

/// Which headline comes first: on-demand before other classes; within a class the
/// main models in their order, then the export pairs, then the rest by how many
/// providers stand behind them.
fn rank(r: &analysis::RatioRow) -> (bool, usize, std::cmp::Reverse<usize>, String) {
    let main = analysis::MAIN_MODELS.iter().position(|m| *m == r.gpu_model);
    let group = match (r.kind.as_str(), main) {
        ("same_model", Some(i)) => i,
        ("export_pair", _) => analysis::MAIN_MODELS.len(),
        _ => analysis::MAIN_MODELS.len() + 1,
    };
    let depth = r.cn_providers.len() + r.us_providers.len();
    (
        r.price_class != "on_demand",
        group,
        std::cmp::Reverse(depth),
        format!("{} {}", r.gpu_model, r.price_class),
    )
}

/// Why a ratio is thin, side by side: " (thin: one CN provider, 3 US offers)".
fn thin_note(r: &analysis::RatioRow, cfg: &analysis::Config) -> String {
    let mut why = Vec::new();
    for (bloc, providers, offers) in [
        ("CN", r.cn_providers.len(), r.cn_offers),
        ("US", r.us_providers.len(), r.us_offers),
    ] {
        if (providers as u32) < analysis::MIN_PROVIDERS {
            why.push(format!("one {bloc} provider"));
        }
        if offers < cfg.thin_cell {
            why.push(format!(
                "{offers} {bloc} offer{}",
                if offers == 1 { "" } else { "s" }
            ));
        }
    }
    if why.is_empty() {
        String::new()
    } else {
        format!(" (thin: {})", why.join(", "))
    }
}

/// How many ratio headlines a report keeps (the ratio tables list all).
pub const HEADLINES_KEPT: usize = 6;

/// What moved since last week: the ratio, and each side's provider-balanced price.
fn change(a: &WeekAnalysis, r: &analysis::RatioRow) -> String {
    let (Some(pc), Some(pu)) = (
        prev_row(a, &r.cn_model, "CN", &r.price_class),
        prev_row(a, &r.us_model, "US", &r.price_class),
    ) else {
        return String::new();
    };
    let prev_ratio = pc.provider_median / pu.provider_median;
    if !prev_ratio.is_finite() {
        return String::new();
    }
    format!(
        "; ratio {} on the week (CN price {}, US price {})",
        pct(r.cn_us_ratio / prev_ratio - 1.0),
        pct(r.cn_median / pc.provider_median - 1.0),
        pct(r.us_median / pu.provider_median - 1.0)
    )
}

/// "No China / no US data this week" warnings, empty when both blocs have offers.
pub fn banners(a: &WeekAnalysis) -> Vec<String> {
    [("CN", "China"), ("US", "the US")]
        .iter()
        .filter(|(bloc, _)| !a.rows.iter().any(|r| r.bloc == *bloc))
        .map(|(bloc, name)| {
            format!(
                "No {bloc} data this week: no offer from {name} was in force in {}, so no China-vs-US comparison can be made for it.",
                a.week
            )
        })
        .collect()
}

/// Headline sentences: the banners, the ranked ratios over all providers (each names
/// the providers and offers behind both sides and flags thin cells), the index.
pub fn headlines(a: &WeekAnalysis) -> Vec<String> {
    let mut out = banners(a);
    let mut ratios: Vec<&analysis::RatioRow> =
        a.ratios.iter().filter(|r| r.segment == "all").collect();
    ratios.sort_by_key(|r| rank(r));
    for r in ratios.into_iter().take(HEADLINES_KEPT) {
        let class = r.price_class.replace('_', "-");
        let thin = thin_note(r, &a.config);
        let cn = side(r.cn_median, &r.cn_providers, r.cn_offers);
        let us = side(r.us_median, &r.us_providers, r.us_offers);
        let ratio = format!(
            "ratio {} ({} ex VAT)",
            num(r.cn_us_ratio, 2),
            num(r.cn_us_ratio_ex_vat, 2)
        );
        let what = if r.kind == "same_model" {
            format!("{} ({class}): CN {cn} vs US {us} per GPU-hour", r.gpu_model)
        } else {
            format!(
                "{} in China {cn} vs {} in the US {us} per GPU-hour ({class})",
                r.cn_model, r.us_model
            )
        };
        out.push(format!("{what}: {ratio}{}{thin}", change(a, r)));
    }
    out.extend(index_headline(a));
    out
}

pub(super) fn label(sim: bool, s: &str) -> String {
    if sim {
        format!("{s} [{SIMULATED}]")
    } else {
        s.to_string()
    }
}

/// Chart titles carry the short label; captions and headers the full one.
pub(super) fn short_label(sim: bool, s: &str) -> String {
    if sim {
        format!("{} {s}", super::chart::SIMULATED_TITLE)
    } else {
        s.to_string()
    }
}

/// The index headline: level, change on the week and over four weeks, per bloc.
pub fn index_headline(a: &WeekAnalysis) -> Option<String> {
    let mut parts = Vec::new();
    for bloc in ["CN", "US"] {
        let pts: Vec<&analysis::IndexPoint> = a
            .index
            .iter()
            .filter(|p| p.bloc == bloc && p.monday <= a.from)
            .collect();
        let Some(last) = pts.last().filter(|p| p.monday == a.from) else {
            continue;
        };
        let back = |weeks: i64| {
            pts.iter()
                .find(|p| p.monday == a.from - chrono::Duration::days(7 * weeks))
                .map(|p| last.index / p.index - 1.0)
                .unwrap_or(f64::NAN)
        };
        parts.push(format!(
            "{bloc} {} ({} on the week, {} over four weeks; {} cells linked)",
            num(last.index, 1),
            pct1(back(1)),
            pct1(back(4)),
            last.cells_matched
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Price index over matched cells (provider x model x class, first week = 100): {}",
            parts.join("; ")
        )
    })
}

/// The methodology paragraph, with the thresholds actually used (METHODOLOGY.md has
/// the full text).
pub fn method(cfg: &analysis::Config) -> String {
    format!("Prices are USD per GPU-hour: each published price is divided by the GPUs in the offer, converted from its unit (per instance, per month of 730 hours, cents, thousandths of a yuan) and from its currency at the ECB reference rate of the observation date or the latest earlier one (at most 7 days). A price stands from its observation until the same feed's next snapshot of that provider supersedes it (an offer missing from that snapshot has ended) or until it expires: list prices after at most 45 days, marketplace offers after a few hours (tables/providers.toml); gaps beyond that stay gaps. Each week's and day's statistics are over the offers in force in it, each offer counted once at its last price in force. The headline figure of a model, bloc and class is the median of the providers' median prices, so each provider counts once; the offer-level quartiles stand beside it. Ratios compare these figures over all providers and within each segment (hyperscaler, gpu_cloud, marketplace), and provider by provider. Fractional-GPU offers and prices under {}x or over {}x the median of their model's observations in the same ISO week are left out and counted; cells with fewer than {} offers in force or a single provider are marked thin. GPU models are never merged across SXM/PCIe or across export variants (H800, H20, A800, RTX 4090D stay apart from H100, A100, RTX 4090); comparable pairs across the export-control line are shown as such. The price index chains week to week the geometric mean of the price relatives of the cells (provider x model x class) in force in both weeks (Jevons over matched items, first week = 100), so providers or models appearing or missing are not price moves. Bloc CN is mainland China; Hong Kong, Macau and Taiwan are OTHER. Prices compared are as published: Chinese list prices may include VAT, US list prices do not; ratios excluding VAT are shown beside. See METHODOLOGY.md.", cfg.implausible_low, cfg.implausible_high, cfg.thin_cell)
}

pub(super) fn pct_plain(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "n/a".into()
    }
}

/// What the headlines say when no model was quoted in both blocs.
pub(super) const NO_HEADLINE: &str = "No model was quoted in both China and the US this week.";

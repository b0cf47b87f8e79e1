//! Do gpurent and DuckDB compute the same figures? Rows are matched by their key
//! columns (never by position); every row on one side must be on the other.
//!
//! Tolerances: the weekly statistics are compared from `summary.json` (full
//! precision) to 1e-9 relative, as `tests/it/engines.rs` does; `history` and `prices`
//! print USD per GPU-hour and ages with 4 decimals, so they agree when DuckDB's
//! unrounded value is within half a unit of the 4th decimal. Counts and texts match
//! exactly.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How one column is compared.
#[derive(Clone, Copy)]
enum Kind {
    Key,
    Exact,
    /// Numbers within `|a - b| <= abs + rel * max(|b|, 1)`.
    Num {
        abs: f64,
        rel: f64,
    },
}

const FULL: Kind = Kind::Num {
    abs: 0.0,
    rel: 1e-9,
};
/// Half a unit of the 4th decimal, and a little for the binary representation.
const PRINTED_4DP: Kind = Kind::Num {
    abs: 0.5e-4 + 1e-12,
    rel: 0.0,
};

type Rows = Vec<Map<String, Value>>;

/// DuckDB's `{"columns", "rows"}` as one object per row.
fn duck_rows(stdout: &str) -> Result<Rows, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .ok_or("DuckDB printed no JSON")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("DuckDB's JSON: {e}"))?;
    let cols: Vec<String> = v["columns"]
        .as_array()
        .ok_or("no columns")?
        .iter()
        .map(|c| c.as_str().unwrap_or("").to_string())
        .collect();
    let rows = v["rows"].as_array().ok_or("no rows")?;
    Ok(rows
        .iter()
        .map(|r| {
            cols.iter()
                .cloned()
                .zip(r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .collect())
}

fn json_rows(text: &str, what: &str) -> Result<Rows, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))?;
    v.as_array()
        .ok_or(format!("{what}: not an array of rows"))?
        .iter()
        .map(|r| {
            r.as_object()
                .cloned()
                .ok_or(format!("{what}: a row is not an object"))
        })
        .collect()
}

/// `summary.json`'s `rows` against DuckDB's `sql/weekly_stats.sql`.
pub fn report(summary: &[u8], duck: &str) -> Result<String, String> {
    let v: Value = serde_json::from_slice(summary).map_err(|e| format!("summary.json: {e}"))?;
    let ours = json_rows(&v["rows"].to_string(), "summary.json rows")?;
    let spec = [
        ("gpu_model", Kind::Key),
        ("bloc", Kind::Key),
        ("price_class", Kind::Key),
        ("offers", Kind::Exact),
        ("providers", Kind::Exact),
        ("min", FULL),
        ("p10", FULL),
        ("p25", FULL),
        ("median", FULL),
        ("p75", FULL),
        ("p90", FULL),
        ("provider_median", FULL),
        ("provider_median_ex_vat", FULL),
    ];
    let n = rows_agree(&ours, &duck_rows(duck)?, &spec)?;
    Ok(format!("yes: {n} cells x 10 figures, to 1e-9"))
}

/// `gpurent history --format json` against DuckDB's history query.
pub fn history(gp: &str, duck: &str) -> Result<String, String> {
    let spec = [
        ("period_utc", Kind::Key),
        ("gpu_model", Kind::Key),
        ("bloc", Kind::Key),
        ("price_class", Kind::Key),
        ("offers", Kind::Exact),
        ("median_usd_per_gpu_hour", PRINTED_4DP),
        ("p25_usd_per_gpu_hour", PRINTED_4DP),
        ("p75_usd_per_gpu_hour", PRINTED_4DP),
    ];
    let n = rows_agree(&json_rows(gp, "history")?, &duck_rows(duck)?, &spec)?;
    Ok(format!("yes: {n} rows, to the 4 printed decimals"))
}

/// `gpurent prices --format json` against DuckDB's prices query.
pub fn prices(gp: &str, duck: &str) -> Result<String, String> {
    let spec = [
        ("gpu_model", Kind::Key),
        ("bloc", Kind::Key),
        ("price_class", Kind::Key),
        ("provider", Kind::Key),
        ("offers", Kind::Exact),
        ("median_usd_per_gpu_hour", PRINTED_4DP),
        ("observed_at_utc", Kind::Exact),
        ("age_hours", PRINTED_4DP),
    ];
    let n = rows_agree(&json_rows(gp, "prices")?, &duck_rows(duck)?, &spec)?;
    Ok(format!("yes: {n} rows, to the 4 printed decimals"))
}

/// Every row of `ours` equals the row of `theirs` with the same key; the number of rows.
fn rows_agree(ours: &Rows, theirs: &Rows, spec: &[(&str, Kind)]) -> Result<usize, String> {
    let key = |r: &Map<String, Value>| -> Vec<String> {
        spec.iter()
            .filter(|(_, k)| matches!(k, Kind::Key))
            .map(|(c, _)| r.get(*c).map(text).unwrap_or_default())
            .collect()
    };
    let theirs: BTreeMap<Vec<String>, &Map<String, Value>> =
        theirs.iter().map(|r| (key(r), r)).collect();
    if ours.is_empty() || ours.len() != theirs.len() {
        return Err(format!(
            "{} rows in gpurent, {} in DuckDB",
            ours.len(),
            theirs.len()
        ));
    }
    for r in ours {
        let k = key(r);
        let t = theirs
            .get(&k)
            .ok_or(format!("{k:?} is not in DuckDB's rows"))?;
        for (c, kind) in spec {
            let (a, b) = (
                r.get(*c).cloned().unwrap_or(Value::Null),
                t.get(*c).cloned().unwrap_or(Value::Null),
            );
            if !same(&a, &b, *kind) {
                return Err(format!("{k:?} {c}: gpurent {a} vs DuckDB {b}"));
            }
        }
    }
    Ok(ours.len())
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn same(a: &Value, b: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Key => true,
        Kind::Exact => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => text(a) == text(b),
        },
        Kind::Num { abs, rel } => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= abs + rel * y.abs().max(1.0),
            _ => a.is_null() && b.is_null(),
        },
    }
}

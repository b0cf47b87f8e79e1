//! `Offers`: the offers an adapter read, kept column by column.
//!
//! Adapters push whole [`RawOffer`]s (or a variant of the last one, `push_variant`);
//! each field goes to its own column. The text fields that repeat (provider, region,
//! country, GPU name, instance type, currency, unit) are kept once per distinct value
//! and the rows hold a 4-byte index, so a payload's offers cost about 100 bytes a row
//! instead of a `RawOffer`'s 320, and normalisation resolves each distinct value
//! once, by its index.
//!
//! Invariants: every column has one entry per row, in the order the offers were
//! pushed; a row read back (`row`, `iter`) equals the `RawOffer` pushed; two `Offers`
//! are equal when their rows are, whatever order their distinct values were met in.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, Utc};

use crate::model::{PriceClass, PriceUnit, RawOffer, Text};

/// A column with few distinct values: each kept once in `values`, in the order first
/// met; `rows` holds each row's index into `values`. A row equal to the row before is
/// not hashed.
#[derive(Clone)]
pub struct Interned<T> {
    pub values: Vec<T>,
    pub rows: Vec<u32>,
    index: HashMap<T, u32, foldhash::fast::RandomState>,
}

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            rows: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<T: Eq + Hash + Clone> Interned<T> {
    fn with_capacity(n: usize) -> Self {
        Self {
            rows: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    fn push(&mut self, value: T) {
        let last = self.rows.last().copied();
        let row = match last {
            Some(i) if self.values[i as usize] == value => i,
            _ => match self.index.get(&value) {
                Some(i) => *i,
                None => {
                    let i = self.values.len() as u32;
                    self.index.insert(value.clone(), i);
                    self.values.push(value);
                    i
                }
            },
        };
        self.rows.push(row);
    }

    /// The value of row `i`.
    pub fn get(&self, i: usize) -> &T {
        &self.values[self.rows[i] as usize]
    }

    /// Give the new row the last row's value, by its index (no hashing).
    fn repeat_last(&mut self) {
        let last = *self.rows.last().expect("a row to repeat");
        self.rows.push(last);
    }

    fn keep(&mut self, keep: &[bool]) {
        retain(&mut self.rows, keep);
    }
}

/// A column of optional numbers: the values and which are present, 9 bytes a row
/// instead of an `Option<f64>`'s 16.
#[derive(Clone, Default)]
pub struct Floats {
    values: Vec<f64>,
    present: Vec<bool>,
}

impl Floats {
    fn with_capacity(n: usize) -> Self {
        Self {
            values: Vec::with_capacity(n),
            present: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, v: Option<f64>) {
        self.values.push(v.unwrap_or(0.0));
        self.present.push(v.is_some());
    }

    fn repeat_last(&mut self) {
        self.push(self.get(self.values.len() - 1));
    }

    /// The value of row `i`.
    pub fn get(&self, i: usize) -> Option<f64> {
        self.present[i].then(|| self.values[i])
    }

    fn keep(&mut self, keep: &[bool]) {
        retain(&mut self.values, keep);
        retain(&mut self.present, keep);
    }
}

/// Keep the entries of `v` whose flag in `keep` is true (a missing flag keeps).
fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    v.retain(|_| flags.next().copied().unwrap_or(true));
}

/// The offers of one payload, column by column (see the module's header). The
/// columns are public to the crate for normalisation, which reads them by index.
/// Shown (`Debug`) as its rows.
#[derive(Clone, Default)]
pub struct Offers {
    pub(crate) provider: Interned<Text>,
    pub(crate) offer_id: Vec<Text>,
    pub(crate) region: Interned<Option<Text>>,
    pub(crate) country: Interned<Option<Text>>,
    pub(crate) gpu_name_raw: Interned<Text>,
    pub(crate) gpu_memory_gb: Floats,
    pub(crate) instance_type: Interned<Option<Text>>,
    pub(crate) gpu_count: Floats,
    pub(crate) price_class: Vec<PriceClass>,
    pub(crate) price: Floats,
    pub(crate) currency: Interned<Text>,
    pub(crate) price_unit: Interned<PriceUnit>,
    pub(crate) gpus_available: Floats,
    pub(crate) observed_at: Interned<Option<DateTime<Utc>>>,
    pub(crate) group_offers: Floats,
}

impl Offers {
    /// Room for `n` offers in every column.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            provider: Interned::with_capacity(n),
            offer_id: Vec::with_capacity(n),
            region: Interned::with_capacity(n),
            country: Interned::with_capacity(n),
            gpu_name_raw: Interned::with_capacity(n),
            gpu_memory_gb: Floats::with_capacity(n),
            instance_type: Interned::with_capacity(n),
            gpu_count: Floats::with_capacity(n),
            price_class: Vec::with_capacity(n),
            price: Floats::with_capacity(n),
            currency: Interned::with_capacity(n),
            price_unit: Interned::with_capacity(n),
            gpus_available: Floats::with_capacity(n),
            observed_at: Interned::with_capacity(n),
            group_offers: Floats::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.offer_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offer_id.is_empty()
    }

    /// Add one offer as the last row.
    pub fn push(&mut self, o: RawOffer) {
        self.provider.push(o.provider);
        self.offer_id.push(o.offer_id);
        self.region.push(o.region);
        self.country.push(o.country);
        self.gpu_name_raw.push(o.gpu_name_raw);
        self.gpu_memory_gb.push(o.gpu_memory_gb);
        self.instance_type.push(o.instance_type);
        self.gpu_count.push(o.gpu_count);
        self.price_class.push(o.price_class);
        self.price.push(o.price);
        self.currency.push(o.currency);
        self.price_unit.push(o.price_unit);
        self.gpus_available.push(o.gpus_available);
        self.observed_at.push(o.observed_at);
        self.group_offers.push(o.group_offers);
    }

    /// Add a row equal to the last one but for its price class and price (a
    /// provider's spot price beside its on-demand one), copying the last row's
    /// indices rather than hashing its texts again. Panics when there is no row.
    pub fn push_variant(&mut self, price_class: PriceClass, price: Option<f64>) {
        let id = self.offer_id.last().expect("a row to repeat").clone();
        self.offer_id.push(id);
        self.provider.repeat_last();
        self.region.repeat_last();
        self.country.repeat_last();
        self.gpu_name_raw.repeat_last();
        self.gpu_memory_gb.repeat_last();
        self.instance_type.repeat_last();
        self.gpu_count.repeat_last();
        self.price_class.push(price_class);
        self.price.push(price);
        self.currency.repeat_last();
        self.price_unit.repeat_last();
        self.gpus_available.repeat_last();
        self.observed_at.repeat_last();
        self.group_offers.repeat_last();
    }

    /// Row `i` as the offer that was pushed. Panics when `i` is out of range.
    pub fn row(&self, i: usize) -> RawOffer {
        RawOffer {
            provider: self.provider.get(i).clone(),
            offer_id: self.offer_id[i].clone(),
            region: self.region.get(i).clone(),
            country: self.country.get(i).clone(),
            gpu_name_raw: self.gpu_name_raw.get(i).clone(),
            gpu_memory_gb: self.gpu_memory_gb.get(i),
            instance_type: self.instance_type.get(i).clone(),
            gpu_count: self.gpu_count.get(i),
            price_class: self.price_class[i],
            price: self.price.get(i),
            currency: self.currency.get(i).clone(),
            price_unit: self.price_unit.get(i).clone(),
            gpus_available: self.gpus_available.get(i),
            observed_at: *self.observed_at.get(i),
            group_offers: self.group_offers.get(i),
        }
    }

    /// The rows in order, each as the offer that was pushed.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RawOffer> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// All rows as offers (tests and small payloads).
    pub fn rows(&self) -> Vec<RawOffer> {
        self.iter().collect()
    }

    /// Keep the rows whose flag in `keep` is true (a row without a flag is kept).
    pub fn keep(&mut self, keep: &[bool]) {
        self.provider.keep(keep);
        retain(&mut self.offer_id, keep);
        self.region.keep(keep);
        self.country.keep(keep);
        self.gpu_name_raw.keep(keep);
        self.gpu_memory_gb.keep(keep);
        self.instance_type.keep(keep);
        self.gpu_count.keep(keep);
        retain(&mut self.price_class, keep);
        self.price.keep(keep);
        self.currency.keep(keep);
        self.price_unit.keep(keep);
        self.gpus_available.keep(keep);
        self.observed_at.keep(keep);
        self.group_offers.keep(keep);
    }

    /// Add `other`'s rows after these; into empty `Offers` they are moved, not copied.
    pub fn append(&mut self, other: Offers) {
        if self.is_empty() {
            *self = other;
        } else {
            self.extend(other.iter());
        }
    }
}

impl std::fmt::Debug for Offers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Offers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Extend<RawOffer> for Offers {
    fn extend<I: IntoIterator<Item = RawOffer>>(&mut self, iter: I) {
        for o in iter {
            self.push(o);
        }
    }
}

impl FromIterator<RawOffer> for Offers {
    fn from_iter<I: IntoIterator<Item = RawOffer>>(iter: I) -> Self {
        let mut offers = Offers::default();
        offers.extend(iter);
        offers
    }
}

impl From<Vec<RawOffer>> for Offers {
    fn from(v: Vec<RawOffer>) -> Self {
        let mut offers = Offers::with_capacity(v.len());
        offers.extend(v);
        offers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Basis;
    use chrono::TimeZone;

    fn offer(id: &str, name: &str, region: Option<&str>) -> RawOffer {
        let mut o = RawOffer::new("vast", id, name);
        o.region = region.map(Into::into);
        o.price = Some(1.5);
        o
    }

    #[test]
    fn rows_read_back_as_pushed() {
        let mut cny = offer("c", "A100", Some("cn-beijing"));
        cny.currency = "CNY".into();
        cny.price_unit = PriceUnit::new("cents", Basis::Instance, "month");
        cny.observed_at = Some(Utc.with_ymd_and_hms(2023, 6, 5, 0, 0, 0).unwrap());
        cny.price_class = PriceClass::Spot;
        cny.gpu_count = Some(8.0);
        cny.price = None;
        let pushed = vec![
            offer("a", "H100", None),
            offer("b", "H100", Some("us-east")),
            cny,
            offer("d", "H100", None),
        ];
        let offers = Offers::from(pushed.clone());
        assert_eq!(offers.len(), 4);
        assert_eq!(offers.rows(), pushed);
        assert_eq!(offers.gpu_name_raw.values.len(), 2, "H100 is kept once");
        assert_eq!(offers.region.rows, [0, 1, 2, 0], "none is a value too");
    }

    /// A variant is the last row with another class and price, whatever the row.
    #[test]
    fn a_variant_repeats_the_last_row_but_its_class_and_price() {
        let mut cny = offer("c", "A100", Some("cn-beijing"));
        cny.currency = "CNY".into();
        cny.observed_at = Some(Utc.with_ymd_and_hms(2023, 6, 5, 0, 0, 0).unwrap());
        cny.gpu_count = Some(8.0);
        cny.gpu_memory_gb = None;
        for last in [offer("a", "H100", None), cny] {
            let mut offers = Offers::from(vec![offer("z", "B200", Some("us")), last.clone()]);
            offers.push_variant(PriceClass::Spot, Some(0.25));
            let mut spot = last.clone();
            (spot.price_class, spot.price) = (PriceClass::Spot, Some(0.25));
            assert_eq!(offers.rows()[1..], [last, spot]);
        }
    }

    #[test]
    fn equal_by_rows_whatever_order_values_were_met() {
        let (a, b) = (offer("1", "A", None), offer("2", "B", None));
        let mut ab = Offers::from(vec![b.clone(), a.clone()]);
        ab.keep(&[false, true]);
        ab.push(b.clone());
        assert_eq!(ab, Offers::from(vec![a.clone(), b.clone()]));
        assert_ne!(ab, Offers::from(vec![b, a]));
    }

    #[test]
    fn append_and_keep() {
        let mut x = Offers::default();
        x.append(Offers::from(vec![offer("1", "A", None)]));
        x.append(Offers::from(vec![
            offer("2", "B", None),
            offer("3", "A", None),
        ]));
        x.keep(&[true, false]);
        let ids: Vec<String> = x.iter().map(|o| o.offer_id.to_string()).collect();
        assert_eq!(ids, ["1", "3"]);
    }
}

//! Property tests of normalisation: unit and currency conversions round-trip, and
//! per-GPU prices scale with the GPU count.

use chrono::{NaiveDate, TimeZone, Utc};
use gpurent::model::{Basis, FxRate, PriceUnit, RawOffer};
use gpurent::normalise::{fx_frame, normalise, Context};
use gpurent::tables::Tables;
use proptest::prelude::*;

fn usd_per_gpu_hour(offer: RawOffer, fx: &[FxRate]) -> f64 {
    let ctx = Context {
        sample: true,
        ..Context::new("prop", Utc.with_ymd_and_hms(2024, 10, 7, 12, 0, 0).unwrap())
    };
    let batch = normalise(
        vec![offer].into(),
        &[],
        &ctx,
        Tables::embedded(),
        &fx_frame(fx).unwrap(),
    )
    .unwrap();
    assert_eq!(batch.offers.height(), 1, "rejects: {:?}", batch.rejects);
    batch
        .offers
        .column("usd_per_gpu_hour")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap()
}

fn offer(price: f64, count: f64, unit: PriceUnit, currency: &str) -> RawOffer {
    let mut o = RawOffer::new("prop", "x", "H100 SXM");
    o.price = Some(price);
    o.gpu_count = Some(count);
    o.price_unit = unit;
    o.currency = currency.into();
    o
}

fn rates(usd: f64, cny: f64) -> Vec<FxRate> {
    let d = NaiveDate::from_ymd_opt(2024, 10, 4).unwrap();
    vec![
        FxRate {
            date: d,
            currency: "USD".into(),
            units_per_eur: usd,
        },
        FxRate {
            date: d,
            currency: "CNY".into(),
            units_per_eur: cny,
        },
    ]
}

const PERIODS: &[(&str, f64)] = &[
    ("second", 1.0 / 3600.0),
    ("minute", 1.0 / 60.0),
    ("hour", 1.0),
    ("day", 24.0),
    ("week", 168.0),
    ("month", 730.0),
    ("year", 8760.0),
];
const SCALES: &[(&str, f64)] = &[
    ("unit", 1.0),
    ("cents", 0.01),
    ("thousandths", 0.001),
    ("hundred_thousandths", 0.00001),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Expressing the same hourly price in any period and scale gives the same result.
    #[test]
    fn units_round_trip(per_hour in 0.01f64..100.0, p in 0usize..7, s in 0usize..4) {
        let (period, hours) = PERIODS[p];
        let (scale, mult) = SCALES[s];
        let published = per_hour * hours / mult;
        let got = usd_per_gpu_hour(offer(published, 1.0, PriceUnit::new(scale, Basis::Gpu, period), "USD"), &[]);
        prop_assert!((got - per_hour).abs() <= 1e-9 * per_hour, "{period}/{scale}: {got} vs {per_hour}");
    }

    /// A per-instance price divided by the GPU count equals the per-GPU price, and
    /// doubling the GPUs at the same instance price halves the per-GPU price.
    #[test]
    fn per_gpu_price_scales_with_count(price in 0.01f64..500.0, count in 1u32..17) {
        let n = count as f64;
        let inst = usd_per_gpu_hour(offer(price, n, PriceUnit::instance_hour(), "USD"), &[]);
        let gpu = usd_per_gpu_hour(offer(price / n, n, PriceUnit::gpu_hour(), "USD"), &[]);
        let double = usd_per_gpu_hour(offer(price, 2.0 * n, PriceUnit::instance_hour(), "USD"), &[]);
        prop_assert!((inst - gpu).abs() <= 1e-9 * gpu);
        prop_assert!((double * 2.0 - inst).abs() <= 1e-9 * inst);
    }

    /// Converting CNY to USD and back with the same ECB rates returns the CNY price.
    #[test]
    fn currency_round_trips(cny_price in 0.1f64..1000.0, usd in 0.8f64..1.6, cny in 5.0f64..10.0) {
        let got_usd = usd_per_gpu_hour(offer(cny_price, 1.0, PriceUnit::gpu_hour(), "CNY"), &rates(usd, cny));
        let back = got_usd / usd * cny;
        prop_assert!((back - cny_price).abs() <= 1e-9 * cny_price, "{back} vs {cny_price}");
    }
}

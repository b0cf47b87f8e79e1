//! Colour-vision deficiency (CVD): how a chart colour looks to a protanope, a
//! deuteranope or a tritanope (Machado, Oliveira & Fernandes 2009, severity 1.0),
//! CIE L*a*b* (D65), and the CIE76 and CIEDE2000 colour differences between colours
//! as each kind of vision sees them.
//!
//! Invariants: a simulation is a 3×3 matrix applied to linear-light sRGB, its result
//! clamped to the sRGB gamut (0 to 1 per channel); each matrix's rows sum to 1 (to
//! 1e-6), so greys, white and black look the same in every vision; every pair of
//! colours one chart can draw stays [`MIN_DE00`] apart in every [`Vision`] (the
//! tests measure it).

use super::contrast::linear;
use super::RGBColor;

/// Least CIEDE2000 difference between two colours one chart draws, in every vision.
///
/// ΔE00 ≈ 1 is about a just-noticeable difference between large patches side by
/// side; on the scale widely quoted for ΔE (Schuessler, "Delta E 101", the one
/// chroma.js documents), 2 to 10 is "perceptible at a glance" and 11 to 49 "more
/// similar than opposite". A chart's colours must do more than differ at a glance:
/// they are matched by name across the page, on thin lines, small points and a
/// legend key, and thin marks need several times the difference large patches do
/// (Szafir, "Modeling Color Difference for Visualization Design", IEEE TVCG 24(1),
/// 2018). So 10, the top of "at a glance" and the floor often set for categorical
/// palettes, under normal vision and each full dichromacy alike.
pub const MIN_DE00: f64 = 10.0;

/// A kind of colour vision: normal trichromacy, or one of the three dichromacies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vision {
    Normal,
    /// No L (long-wave, "red") cones.
    Protan,
    /// No M (medium-wave, "green") cones.
    Deutan,
    /// No S (short-wave, "blue") cones.
    Tritan,
}

impl Vision {
    pub const ALL: [Vision; 4] = [
        Vision::Normal,
        Vision::Protan,
        Vision::Deutan,
        Vision::Tritan,
    ];

    /// The matrix taking linear sRGB to linear sRGB as this vision sees it.
    fn matrix(self) -> &'static [[f64; 3]; 3] {
        match self {
            Vision::Normal => &IDENTITY,
            Vision::Protan => &PROTANOPIA,
            Vision::Deutan => &DEUTERANOPIA,
            Vision::Tritan => &TRITANOPIA,
        }
    }
}

const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

// Machado, G. M., Oliveira, M. M. & Fernandes, L. A. F. (2009), "A physiologically-
// based model for simulation of color vision deficiency", IEEE TVCG 15(6),
// 1291–1298, doi:10.1109/TVCG.2009.113; the matrices at severity 1.0 as the authors
// publish them (https://www.inf.ufrgs.br/~oliveira/pubs_files/CVD_Simulation/
// CVD_Simulation.html), for linear RGB. Rows: output R, G, B.
const PROTANOPIA: [[f64; 3]; 3] = [
    [0.152286, 1.052583, -0.204868],
    [0.114503, 0.786281, 0.099216],
    [-0.003882, -0.048116, 1.051998],
];
const DEUTERANOPIA: [[f64; 3]; 3] = [
    [0.367322, 0.860646, -0.227968],
    [0.280085, 0.672501, 0.047413],
    [-0.011820, 0.042940, 0.968881],
];
const TRITANOPIA: [[f64; 3]; 3] = [
    [1.255528, -0.076749, -0.178779],
    [-0.078411, 0.930809, 0.147602],
    [0.004733, 0.691367, 0.303900],
];

/// A linear-light channel (0 to 1, clamped) as an sRGB byte; inverse of [`linear`].
pub fn encode(l: f64) -> u8 {
    let l = l.clamp(0.0, 1.0);
    let s = if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    };
    (255.0 * s).round() as u8
}

/// The linear-light RGB (0 to 1 each) that `v` sees for the sRGB colour `c`.
pub fn seen(c: RGBColor, v: Vision) -> [f64; 3] {
    let rgb = [linear(c.0), linear(c.1), linear(c.2)];
    v.matrix()
        .map(|row| (0..3).map(|j| row[j] * rgb[j]).sum::<f64>().clamp(0.0, 1.0))
}

/// The sRGB colour that shows a normal eye what `v` sees of `c`.
pub fn simulate(c: RGBColor, v: Vision) -> RGBColor {
    let [r, g, b] = seen(c, v);
    RGBColor(encode(r), encode(g), encode(b))
}

/// CIE L*a*b* (D65 white) of linear-light sRGB: L* 0 (black) to 100 (white).
pub fn lab([r, g, b]: [f64; 3]) -> [f64; 3] {
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    [
        116.0 * f(y) - 16.0,
        500.0 * (f(x) - f(y)),
        200.0 * (f(y) - f(z)),
    ]
}

/// CIE76 difference of two sRGB colours (Euclidean in L*a*b*): about 2.3 is just
/// noticeable, 20 plainly different.
pub fn cie76(a: RGBColor, b: RGBColor) -> f64 {
    let (a, b) = (lab(seen(a, Vision::Normal)), lab(seen(b, Vision::Normal)));
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f64>().sqrt()
}

/// CIEDE2000 difference of two sRGB colours as `v` sees them (kL = kC = kH = 1).
pub fn de00(a: RGBColor, b: RGBColor, v: Vision) -> f64 {
    ciede2000(lab(seen(a, v)), lab(seen(b, v)))
}

/// A hue angle in degrees, 0 to 360; 0 for a neutral colour.
fn hue(b: f64, a: f64) -> f64 {
    if a == 0.0 && b == 0.0 {
        0.0
    } else {
        b.atan2(a).to_degrees().rem_euclid(360.0)
    }
}

/// C'/h' of CIEDE2000: chroma and hue after the a* axis is stretched by `1 + g`.
fn chroma_hue([_, a, b]: [f64; 3], g: f64) -> (f64, f64) {
    let a = (1.0 + g) * a;
    (a.hypot(b), hue(b, a))
}

/// The mean hue h̄' of two chromatic colours; their sum when either is neutral.
fn mean_hue(h1: f64, h2: f64, neutral: bool) -> f64 {
    if neutral {
        h1 + h2
    } else if (h1 - h2).abs() <= 180.0 {
        (h1 + h2) / 2.0
    } else if h1 + h2 < 360.0 {
        (h1 + h2 + 360.0) / 2.0
    } else {
        (h1 + h2 - 360.0) / 2.0
    }
}

/// The hue difference Δh' in degrees, -180 to 180; 0 when either is neutral.
fn hue_step(h1: f64, h2: f64, neutral: bool) -> f64 {
    let d = h2 - h1;
    match d {
        _ if neutral => 0.0,
        d if d > 180.0 => d - 360.0,
        d if d < -180.0 => d + 360.0,
        d => d,
    }
}

/// CIEDE2000 (CIE 142-2001) as Sharma, Wu & Dalal (2005) set it out, of two
/// L*a*b* colours.
pub fn ciede2000(x: [f64; 3], y: [f64; 3]) -> f64 {
    let pow7 = |c: f64| c.powi(7) / (c.powi(7) + 25f64.powi(7));
    let c_mean = (x[1].hypot(x[2]) + y[1].hypot(y[2])) / 2.0;
    let g = 0.5 * (1.0 - pow7(c_mean).sqrt());
    let ((c1, h1), (c2, h2)) = (chroma_hue(x, g), chroma_hue(y, g));
    let neutral = c1 * c2 == 0.0;
    let dh = hue_step(h1, h2, neutral);
    let big_dh = 2.0 * (c1 * c2).sqrt() * (dh / 2.0).to_radians().sin();
    let (l, c, h) = (
        (x[0] + y[0]) / 2.0,
        (c1 + c2) / 2.0,
        mean_hue(h1, h2, neutral),
    );
    let cos = |deg: f64| deg.to_radians().cos();
    let t = 1.0 - 0.17 * cos(h - 30.0) + 0.24 * cos(2.0 * h) + 0.32 * cos(3.0 * h + 6.0)
        - 0.20 * cos(4.0 * h - 63.0);
    let s_l = 1.0 + 0.015 * (l - 50.0).powi(2) / (20.0 + (l - 50.0).powi(2)).sqrt();
    let (s_c, s_h) = (1.0 + 0.045 * c, 1.0 + 0.015 * c * t);
    let rotation = 30.0 * (-((h - 275.0) / 25.0).powi(2)).exp();
    let r_t = -(2.0 * rotation).to_radians().sin() * 2.0 * pow7(c).sqrt();
    let (dl, dc, dh) = ((y[0] - x[0]) / s_l, (c2 - c1) / s_c, big_dh / s_h);
    (dl * dl + dc * dc + dh * dh + r_t * dc * dh).sqrt()
}

#[cfg(test)]
mod tests {
    use super::super::{model_color, parse_hex, BLOC_COLOURS, OTHER_BLOC, PALETTE};
    use super::*;
    use Vision::{Deutan, Normal, Protan, Tritan};

    fn hex(s: &str) -> RGBColor {
        parse_hex(s).expect("a #rrggbb colour")
    }

    /// Pure red, green and blue come out as the matrix's columns (clamped to 0 to 1,
    /// then encoded); grey, white and black as themselves.
    #[test]
    fn simulation_reproduces_the_published_matrices() {
        fn check(v: Vision, colour: &str, expected: &str) {
            let got = simulate(hex(colour), v).hex();
            assert_eq!(got, expected, "{colour} as {v:?} sees it");
        }
        // Protanopia: red is the column (0.152286, 0.114503, -0.003882 → 0).
        check(Protan, "#ff0000", "#6d5f00");
        check(Protan, "#00ff00", "#ffe500");
        check(Protan, "#0000ff", "#0059ff");
        check(Deutan, "#ff0000", "#a39000");
        check(Deutan, "#00ff00", "#efd63a");
        check(Deutan, "#0000ff", "#003dfb");
        check(Tritan, "#ff0000", "#ff000f");
        check(Tritan, "#00ff00", "#00f7d9");
        check(Tritan, "#0000ff", "#006b96");
        for v in Vision::ALL {
            for grey in ["#000000", "#767676", "#808080", "#ffffff"] {
                check(v, grey, grey);
            }
        }
        check(Normal, "#c15500", "#c15500");
    }

    #[test]
    fn encode_inverts_linear() {
        for c in 0..=255u8 {
            assert_eq!(encode(linear(c)), c);
        }
    }

    /// Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula:
    /// implementation notes, supplementary test data, and mathematical observations",
    /// Color Res. Appl. 30(1), 21–30, table 1 (a dozen of its 34 pairs, including
    /// the hue-wrap and neutral cases).
    #[test]
    fn ciede2000_matches_sharma_test_data() {
        fn check(x: [f64; 3], y: [f64; 3], expected: f64) {
            let (d, back) = (ciede2000(x, y), ciede2000(y, x));
            assert!(
                (d - expected).abs() < 5e-5,
                "{x:?} {y:?}: {d:.4} ≠ {expected}"
            );
            assert!((d - back).abs() < 1e-9, "not symmetric: {d} {back}");
        }
        check([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485], 2.0425);
        check([50.0, 3.1571, -77.2803], [50.0, 0.0, -82.7485], 2.8615);
        check([50.0, 0.0, 0.0], [50.0, -1.0, 2.0], 2.3669);
        check([50.0, 2.49, -0.001], [50.0, -2.49, 0.0011], 7.2195);
        check([50.0, -0.001, 2.49], [50.0, 0.0009, -2.49], 4.8045);
        check([50.0, -0.001, 2.49], [50.0, 0.0011, -2.49], 4.7461);
        check([50.0, 2.5, 0.0], [73.0, 25.0, -18.0], 27.1492);
        check([50.0, 2.5, 0.0], [61.0, -5.0, 29.0], 22.8977);
        check([50.0, 2.5, 0.0], [56.0, -27.0, -3.0], 31.9030);
        check([50.0, 2.5, 0.0], [58.0, 24.0, 15.0], 19.4535);
        check(
            [60.2574, -34.0099, 36.2677],
            [60.4626, -34.1751, 39.4387],
            1.2644,
        );
        check([50.0, 0.0, 0.0], [50.0, 0.0, 0.0], 0.0);
    }

    /// Every pair of colours that can share one chart, named: CN and US (every bloc
    /// chart), each against the other bloc's grey (the provider bars), and the
    /// model colours among themselves (the ratio chart draws a line per model in
    /// both blocs, with no bound; past the distinct model colours a colour repeats
    /// and a dash tells the lines apart, so those are the ones colour alone must
    /// separate). Reference lines are grey and dashed, told apart by their dash.
    fn chart_pairs() -> Vec<((String, RGBColor), (String, RGBColor))> {
        let cn = ("CN".to_string(), PALETTE[0]);
        let us = ("US".to_string(), PALETTE[1]);
        let other = ("OTHER_BLOC".to_string(), OTHER_BLOC);
        let mut pairs = vec![(cn.clone(), us.clone()), (cn, other.clone()), (us, other)];
        let models: Vec<_> = (0..PALETTE.len() - BLOC_COLOURS)
            .map(|i| (format!("model {i}"), model_color(i)))
            .collect();
        for (i, a) in models.iter().enumerate() {
            pairs.extend(models[i + 1..].iter().map(|b| (a.clone(), b.clone())));
        }
        pairs
    }

    /// The pair of chart colours closest together as `v` sees them, and their ΔE00.
    fn closest(v: Vision) -> (String, f64) {
        chart_pairs()
            .into_iter()
            .map(|((n1, c1), (n2, c2))| {
                let what = format!("{n1} {} / {n2} {}", c1.hex(), c2.hex());
                (what, de00(c1, c2, v))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("at least CN and US")
    }

    /// The closest pair in each vision, measured: it must stay [`MIN_DE00`] apart,
    /// and the table records which pair it is and how far (a palette change shows
    /// here).
    #[test]
    fn chart_colours_stay_apart_in_every_vision() {
        fn check(v: Vision, pair: &str, measured: f64) {
            let (got, d) = closest(v);
            assert!(
                d >= MIN_DE00,
                "{v:?}: {got} only {d:.2} apart, below {MIN_DE00}"
            );
            assert_eq!(
                (got.as_str(), format!("{d:.1}")),
                (pair, format!("{measured:.1}")),
                "{v:?}"
            );
        }
        // Before the green and olive were darkened and the purple saturated
        // (#008b65, #847c0a, #be558f): orange / olive 2.0 protan and 1.8 deutan,
        // purple / cyan 7.3 protan, green / cyan 4.4 and orange / purple 8.7 tritan.
        check(Normal, "model 0 #a37000 / model 5 #685c15", 16.4);
        check(Protan, "model 0 #a37000 / model 5 #685c15", 10.0);
        check(Deutan, "model 2 #c4438e / model 3 #0085a0", 10.7);
        check(Tritan, "model 1 #007554 / model 3 #0085a0", 10.0);
    }
}

//! Colour contrast (WCAG 2.x): relative luminance, contrast ratio, and a check that
//! every data mark and text of a chart's SVG stands out from the white page.
//!
//! Invariants: data marks (lines, points, bars, legend keys, the badge's outline)
//! reach [`MARK_MIN`] (3:1, WCAG 1.4.11 non-text contrast) against white, text reaches
//! [`TEXT_MIN`] (4.5:1, WCAG 1.4.3); a translucent mark is judged by the colour it
//! shows over white. Decoration (the background, grid, report-week shading and
//! bands) is exempt: it sits in an element or group whose class is in [`DECOR`].

use quick_xml::events::{BytesStart, Event};

use super::RGBColor;

/// Least contrast of a data mark against its background (WCAG 1.4.11).
pub const MARK_MIN: f64 = 3.0;
/// Least contrast of text against its background (WCAG 1.4.3).
pub const TEXT_MIN: f64 = 4.5;
/// Classes of the elements and groups that are decoration, not data.
pub const DECOR: [&str; 4] = ["background", "grid", "shade", "band"];
const WHITE: RGBColor = RGBColor(255, 255, 255);

/// An sRGB channel as linear light, 0 to 1.
pub fn linear(c: u8) -> f64 {
    let s = f64::from(c) / 255.0;
    if s <= 0.04045 {
        s / 12.92
    } else {
        ((s + 0.055) / 1.055).powf(2.4)
    }
}

/// WCAG relative luminance, 0 (black) to 1 (white).
pub fn luminance(c: RGBColor) -> f64 {
    0.2126 * linear(c.0) + 0.7152 * linear(c.1) + 0.0722 * linear(c.2)
}

/// WCAG contrast ratio of two colours, 1 (same) to 21 (black on white).
pub fn contrast_ratio(a: RGBColor, b: RGBColor) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// A `#rrggbb` colour; `None` for anything else.
pub fn parse_hex(s: &str) -> Option<RGBColor> {
    let h = s.strip_prefix('#').filter(|h| h.len() == 6)?;
    let byte = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some(RGBColor(byte(0)?, byte(2)?, byte(4)?))
}

/// The colour `c` shows at `opacity` over `bg`.
pub fn over(c: RGBColor, bg: RGBColor, opacity: f64) -> RGBColor {
    let mix =
        |a: u8, b: u8| (opacity * f64::from(a) + (1.0 - opacity) * f64::from(b)).round() as u8;
    RGBColor(mix(c.0, bg.0), mix(c.1, bg.1), mix(c.2, bg.2))
}

/// One element of an SVG: its name and attributes, whether it is decoration, the
/// class of the innermost group holding it, and (for text, title, desc) its content.
#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub decor: bool,
    pub group: Option<String>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An attribute as a number (e.g. `x`, `width`).
    pub fn num(&self, key: &str) -> Option<f64> {
        self.attr(key)?.parse().ok()
    }
}

fn element(e: &BytesStart, parent: &Parent) -> Result<Element, String> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = a.unescape_value().map_err(|e| e.to_string())?;
        attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            v.into_owned(),
        ));
    }
    let mut el = Element {
        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        attrs,
        decor: parent.0,
        group: parent.1.clone(),
        text: String::new(),
    };
    el.decor |= el.attr("class").is_some_and(|c| DECOR.contains(&c));
    Ok(el)
}

/// What an open element passes to its children: decoration, and the group's class.
type Parent = (bool, Option<String>);

/// Every element of an SVG in document order.
pub fn elements(svg: &str) -> Result<Vec<Element>, String> {
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut out, mut open) = (Vec::<Element>::new(), Vec::<Parent>::new());
    let mut in_text = false;
    loop {
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        let parent = open.last().cloned().unwrap_or_default();
        match ev {
            Event::Eof => return Ok(out),
            Event::Start(e) => {
                let el = element(&e, &parent)?;
                let class = match el.name.as_str() {
                    "g" => el.attr("class").map(str::to_string),
                    _ => parent.1,
                };
                open.push((el.decor, class));
                in_text = matches!(el.name.as_str(), "text" | "title" | "desc");
                out.push(el);
            }
            Event::Empty(e) => out.push(element(&e, &parent)?),
            Event::End(_) => {
                open.pop();
                in_text = false;
            }
            Event::Text(t) if in_text => {
                if let Some(last) = out.last_mut() {
                    last.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            _ => {}
        }
    }
}

/// The colour a shape or text shows over white, and the least contrast it needs;
/// `None` for an element that paints nothing or is decoration.
fn paint(el: &Element) -> Option<(&str, RGBColor, f64)> {
    if el.decor {
        return None;
    }
    let opacity = |k: &str| el.num(k).unwrap_or(1.0) * el.num("opacity").unwrap_or(1.0);
    let (colour, alpha, min) = match el.name.as_str() {
        "text" => (el.attr("fill")?, opacity("fill-opacity"), TEXT_MIN),
        "polyline" | "polygon" | "rect" | "circle" | "line" | "path" => {
            match el.attr("stroke").filter(|s| *s != "none") {
                Some(s) => (s, opacity("stroke-opacity"), MARK_MIN),
                None => (el.attr("fill")?, opacity("fill-opacity"), MARK_MIN),
            }
        }
        _ => return None,
    };
    if colour == "none" {
        return None;
    }
    let shown = parse_hex(colour).map_or(RGBColor(255, 0, 255), |c| over(c, WHITE, alpha));
    Some((colour, shown, min))
}

/// Each data mark or text of an SVG whose colour falls below its least contrast
/// against white (or is not a `#rrggbb` colour), described; empty when all pass.
pub fn contrast_issues(svg: &str) -> Vec<String> {
    let els = match elements(svg) {
        Ok(els) => els,
        Err(e) => return vec![format!("the SVG does not parse: {e}")],
    };
    let mut out: Vec<String> = Vec::new();
    for el in &els {
        let Some((colour, shown, min)) = paint(el) else {
            continue;
        };
        let ratio = contrast_ratio(shown, WHITE);
        let what = match el.name.as_str() {
            "text" => format!("text {:?}", el.text),
            name => format!("<{name}>"),
        };
        let issue = if parse_hex(colour).is_none() {
            format!("{what} has colour {colour:?}, not #rrggbb")
        } else if ratio < min {
            format!("{what} {colour}: {ratio:.2}:1 on white, below {min}:1")
        } else {
            continue;
        };
        // One line per kind of mark and colour, not one per point.
        if !out.contains(&issue) {
            out.push(issue);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_match_wcag_reference_values() {
        let black = RGBColor(0, 0, 0);
        assert!((contrast_ratio(black, WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(WHITE, WHITE) - 1.0).abs() < 1e-9);
        // #767676 is the lightest grey with 4.5:1 on white (WebAIM: 4.54).
        let grey = parse_hex("#767676").unwrap();
        assert!((contrast_ratio(grey, WHITE) - 4.54).abs() < 0.01);
        assert_eq!(contrast_ratio(grey, WHITE), contrast_ratio(WHITE, grey));
    }

    #[test]
    fn issues_name_faint_marks_and_text_but_not_decoration() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg">
<rect class="background" width="9" height="9" fill="#ffffff"/>
<g class="grid"><polyline points="0,0 1,1" stroke="#eeeeee"/></g>
<polyline points="0,0 1,1" fill="none" stroke="#e69f00"/>
<circle cx="1" cy="1" r="2" fill="#0072b2"/>
<rect width="2" height="2" fill="#0072b2" fill-opacity="0.3"/>
<text fill="#888888">faint</text>
<text fill="#222222">dark</text>
</svg>"##;
        let issues = contrast_issues(svg);
        assert_eq!(issues.len(), 3, "{issues:#?}");
        assert!(issues[0].contains("#e69f00"), "{issues:?}");
        assert!(issues[1].contains("fill-opacity") || issues[1].contains("#0072b2"));
        assert!(issues[2].contains("faint"), "{issues:?}");
    }
}

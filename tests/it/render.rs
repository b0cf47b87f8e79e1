//! The weekly page rendered by headless Chromium: feed-supplied text that looks like
//! HTML (a GPU name, a location, a provider name) reaches the page as escaped text,
//! no element is injected, and the page actually paints.
//!
//! The same page at phone (390 px) and desktop widths: painted, charts legible, and
//! nothing wider than the phone's viewport.
//!
//! Skips with "SKIPPED: chromium not installed" when there is no `chromium`, unless
//! `GPURENT_REQUIRE_CHROMIUM=1` (CI), which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const IMG: &str = "<img src=x onerror=alert(1)>";
const SCRIPT: &str = "<script>alert(1)</script>";
const SCRIPT2: &str = "<script>alert(2)</script>";

/// Chromium is missing: a failure in CI, else a visible skip.
fn no_chromium(what: &str) {
    crate::common::missing_part(
        "GPURENT_REQUIRE_CHROMIUM",
        &format!("chromium not installed ({what}; scripts/setup.sh installs it)"),
    );
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Run a command with a deadline; returns (success, stdout).
fn run_with_deadline(mut cmd: Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (reader.join().unwrap(), err_reader.join().unwrap());
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

fn chromium_cmd(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// A store with one hour of offers, some of whose text is hostile, and its W41 report.
fn hostile_report(root: &Path) -> PathBuf {
    let (feeds, store, reports) = (root.join("feeds"), root.join("store"), root.join("reports"));
    std::fs::create_dir_all(&feeds).unwrap();
    let vast = serde_json::json!({"offers": [
        {"id": 1, "gpu_name": "H100 SXM", "num_gpus": 8, "gpu_ram": 81559, "dph_total": 16.0, "geolocation": "Beijing, CN"},
        {"id": 2, "gpu_name": "H100 SXM", "num_gpus": 1, "gpu_ram": 81559, "dph_total": 2.5, "geolocation": "Texas, US"},
        // A known GPU in a hostile location: stored (country US), the text kept as published.
        {"id": 3, "gpu_name": "H100 SXM", "num_gpus": 2, "gpu_ram": 81559, "dph_total": 5.4, "geolocation": format!("{IMG}, US")},
        // An unknown, hostile GPU name: rejected, and listed as unresolved in the report.
        {"id": 4, "gpu_name": IMG, "num_gpus": 1, "gpu_ram": 24000, "dph_total": 0.5, "geolocation": format!("{IMG}, US")},
    ]});
    std::fs::write(feeds.join("vast.json"), vast.to_string()).unwrap();
    std::fs::write(
        feeds.join("vast.toml"),
        "format = \"vastai\"\nurl = \"vast.json\"\n",
    )
    .unwrap();
    std::fs::write(
        feeds.join("list.csv"),
        format!("gpu,gpus,price\nRTX 4090,1,0.45\n\"{SCRIPT2}\",1,0.30\n"),
    )
    .unwrap();
    std::fs::write(
        feeds.join("list.toml"),
        format!(
            "format = \"generic_csv\"\nurl = \"list.csv\"\nprovider = \"{SCRIPT}\"\ncurrency = \"USD\"\nprice_unit = \"gpu-hour\"\nprice_class = \"on_demand\"\ncountry = \"US\"\n[columns]\ngpu = \"gpu\"\ngpu_count = \"gpus\"\nprice = \"price\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) = gpurent(&ingest_args(&feeds, &store, "2024-10-07T10:00:00Z"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("vast: ok, 4 offers read, 3 stored, 1 rejected (unknown_gpu_name 1)"),
        "{out}"
    );
    assert!(
        out.contains("list: ok, 2 offers read, 1 stored, 1 rejected (unknown_gpu_name 1)"),
        "{out}"
    );
    let (code, out, err) = gpurent(&report_args(&store, &reports, "2024-W41"));
    assert_eq!(code, 0, "{out}{err}");
    reports.join("2024-W41")
}

#[test]
fn hostile_feed_text_renders_as_text() {
    let tmp = tempdir();
    let week = hostile_report(tmp.path());
    let index = week.join("index.html");

    // The page source: the hostile strings are there, escaped, in the coverage lists.
    let html = std::fs::read_to_string(&index).unwrap();
    let esc = gpurent::report::esc;
    assert!(
        html.contains(&format!(
            "unresolved name <code>{}</code> (provider <code>vastai</code>)",
            esc(IMG)
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "provider <code>{}</code>: 1 offer observations",
            esc(SCRIPT)
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "unresolved name <code>{}</code> (provider <code>{}</code>)",
            esc(SCRIPT2),
            esc(SCRIPT)
        )),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let lower = html.to_ascii_lowercase();
    assert!(
        !lower.contains("<script") && !lower.contains("<img"),
        "no raw hostile markup in the page"
    );
    // In Markdown the names are code spans, which renderers show literally.
    let md = std::fs::read_to_string(week.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "- unresolved name ` {IMG} ` (provider ` vastai `): 1 rejected observations"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("- provider ` {SCRIPT} `: 1 offer observations")),
        "{md}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(week.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["coverage"]["unresolved_names"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let Some(bin) = chromium() else {
        return no_chromium("page render");
    };
    let url = format!("file://{}", index.canonicalize().unwrap().display());
    let png = tmp.path().join("page.png");

    let mut shot = chromium_cmd(&bin, &tmp.path().join("profile-shot"));
    shot.arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1000,2000")
        .arg(&url);
    let (ok, out, err) = run_with_deadline(shot, Duration::from_secs(120));
    assert!(
        ok && png.is_file(),
        "chromium --screenshot failed\nstdout:\n{out}\nstderr:\n{err}"
    );

    // The screenshot is the page painted: not blank, with text and chart strokes.
    let img = image::open(&png).expect("decode the screenshot").to_rgb8();
    assert_eq!((img.width(), img.height()), (1000, 2000));
    let total = (img.width() * img.height()) as f64;
    let ink = img
        .pixels()
        .filter(|p| p.0.iter().any(|c| *c < 200))
        .count() as f64;
    let colours: std::collections::BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        ink / total > 0.01,
        "page looks blank: {:.3}% non-white pixels",
        100.0 * ink / total
    );
    assert!(
        colours.len() > 16,
        "page looks blank: {} colours",
        colours.len()
    );

    let mut dump = chromium_cmd(&bin, &tmp.path().join("profile-dom"));
    dump.arg("--dump-dom").arg(&url);
    let (ok, dom, err) = run_with_deadline(dump, Duration::from_secs(120));
    assert!(
        ok && dom.contains("</html>"),
        "chromium --dump-dom failed\nstderr:\n{err}"
    );
    // The rendered DOM holds the hostile strings as text (serialised escaped) ...
    for hostile in [IMG, SCRIPT, SCRIPT2] {
        let as_text = hostile
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(
            dom.contains(&as_text),
            "{hostile} not shown as text in the DOM"
        );
    }
    // ... and no element was injected: no script, no img, no event handler attribute.
    let dom_lower = dom.to_ascii_lowercase();
    assert!(
        !dom_lower.contains("<script"),
        "a script element was injected"
    );
    assert!(!dom_lower.contains("<img"), "an img element was injected");
    assert!(
        !dom_lower.contains(" onerror=\""),
        "an event handler attribute was injected"
    );
}

/// The viewport and scroll widths Chromium computes for `page` at `width` pixels,
/// read back through a copy of the page whose script writes them into the title.
fn widths(bin: &Path, page: &Path, width: u32, profile: &Path) -> (u64, u64) {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = page.with_file_name("probe.html");
    let script = "<script>window.addEventListener('load',()=>{document.title='W'+document.documentElement.clientWidth+'x'+document.documentElement.scrollWidth+'E'});</script>";
    std::fs::write(
        &probe,
        html.replacen("</body>", &format!("{script}</body>"), 1),
    )
    .unwrap();
    let mut dump = chromium_cmd(bin, profile);
    dump.arg(format!("--window-size={width},900"))
        .arg("--virtual-time-budget=2000")
        .arg("--dump-dom")
        .arg(format!(
            "file://{}",
            probe.canonicalize().unwrap().display()
        ));
    let (ok, dom, err) = run_with_deadline(dump, Duration::from_secs(120));
    assert!(ok, "chromium --dump-dom failed: {err}");
    std::fs::remove_file(&probe).unwrap();
    // The probe's title is the document's, in `<head>`; the inline charts carry
    // `<title>`s of their own further down.
    let head = dom.split("</head>").next().unwrap_or(&dom);
    let t = head
        .split("<title>W")
        .nth(1)
        .and_then(|t| t.split("E</title>").next())
        .unwrap_or_else(|| panic!("no probe title in {dom}"));
    let (c, s) = t.split_once('x').unwrap();
    (c.parse().unwrap(), s.parse().unwrap())
}

#[test]
fn report_page_fits_phone_and_desktop() {
    let tmp = tempdir();
    let week = hostile_report(tmp.path());
    let index = week.join("index.html");
    // The charts the page embeds are legible (checked on the SVG it inlines).
    for e in std::fs::read_dir(week.join("charts")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "svg") {
            let issues =
                gpurent::report::chart::layout_issues(&std::fs::read_to_string(&p).unwrap())
                    .unwrap();
            assert!(issues.is_empty(), "{}: {issues:#?}", p.display());
        }
    }
    let Some(bin) = chromium() else {
        return no_chromium("page screenshots");
    };
    let url = format!("file://{}", index.canonicalize().unwrap().display());
    for (name, width, height) in [("phone", 390u32, 2400u32), ("desktop", 1280, 2400)] {
        let png = tmp.path().join(format!("page-{name}.png"));
        let mut shot = chromium_cmd(&bin, &tmp.path().join(format!("profile-{name}")));
        shot.arg(format!("--screenshot={}", png.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(&url);
        let (ok, out, err) = run_with_deadline(shot, Duration::from_secs(120));
        assert!(ok && png.is_file(), "{name}: chromium failed\n{out}\n{err}");
        if let Some(dir) = std::env::var_os("GPURENT_SCREENSHOT_DIR") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&png, Path::new(&dir).join(format!("page-{name}.png"))).unwrap();
        }
        let img = image::open(&png).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (width, height), "{name}");
        let ink = img
            .pixels()
            .filter(|p| p.0.iter().any(|c| *c < 200))
            .count();
        assert!(
            ink as f64 / f64::from(width * height) > 0.01,
            "{name}: blank page"
        );
        // Chart marks in the CN (vermillion) and US (blue) colours are painted; the
        // phone scales the charts down, so compare hues, not exact pixels.
        let cn = |p: &&image::Rgb<u8>| {
            let [r, g, b] = p.0.map(i32::from);
            r > g + 60 && r > b + 100
        };
        let us = |p: &&image::Rgb<u8>| {
            let [r, g, b] = p.0.map(i32::from);
            b > r + 100 && b > g + 30
        };
        assert!(img.pixels().filter(cn).count() > 50, "{name}: no CN mark");
        assert!(img.pixels().filter(us).count() > 50, "{name}: no US mark");
        // Nothing overflows the viewport sideways (tables scroll inside their box).
        let (client, scroll) = widths(
            &bin,
            &index,
            width,
            &tmp.path().join(format!("probe-{name}")),
        );
        assert!(
            scroll <= client,
            "{name}: page is {scroll} px wide in a {client} px viewport"
        );
    }
}

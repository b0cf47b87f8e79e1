//! The one rule for live URLs: feed `url`s, adapter endpoints, next-page links taken
//! from payloads and redirect targets all pass through [`check`].
//!
//! Rule: the URL must parse (WHATWG, the `url` crate, the same parser reqwest uses),
//! carry no user name or password, and use `https`, or `http` only when the host is a
//! loopback IP literal (127.0.0.0/8, `::1`) or exactly `localhost`. A host that only
//! *starts* like a loopback address (`127.0.0.1.example.invalid`) is a DNS name and is
//! refused, as is `http://127.0.0.1@192.0.2.1/` (user info; the host is 192.0.2.1).
//! Invariant: the check needs no network (no DNS lookup), so a feed file is refused
//! when it is read, before any request.

use std::net::IpAddr;

use url::{Host, Url};

pub use crate::error::UrlError;

/// Check a live URL against the rule; the parsed URL when it passes.
pub fn check(raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|error| UrlError::Invalid {
        raw: raw.to_string(),
        error,
    })?;
    check_url(&url).map(|()| url)
}

/// [`check`] for an already parsed URL (e.g. a redirect target).
pub fn check_url(url: &Url) -> Result<(), UrlError> {
    let shown = shown_url(url.as_str());
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::UserInfo { shown });
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if url.host().is_some_and(|h| is_loopback(&h)) => Ok(()),
        "http" => Err(UrlError::PlainHttp { shown }),
        s => Err(UrlError::Scheme {
            shown,
            scheme: s.to_string(),
        }),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

/// A URL as shown in errors and logs: the query string can carry key ids or signatures,
/// so it is left out.
pub fn shown_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?[query omitted]"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_case(url: &str, ok: bool) {
        assert_eq!(check(url).is_ok(), ok, "{url}: {:?}", check(url));
    }

    #[test]
    fn loopback_only_for_plain_http() {
        for (url, ok) in [
            ("https://example.com/x", true),
            ("https://192.0.2.1:8443/x?a=b", true),
            ("http://127.0.0.1:8080/x", true),
            ("http://127.255.0.9/x", true),
            ("http://localhost/x", true),
            ("http://LOCALHOST:9/x", true),
            ("http://[::1]:9/x", true),
            ("http://0x7f.0.0.1/x", true), // the parser's canonical form is 127.0.0.1
            ("http://10.0.0.1/x", false),
            ("http://example.com/x", false),
            ("http://127.0.0.1.example.invalid/", false),
            ("http://localhost.example.invalid/", false),
            ("http://127.0.0.1@192.0.2.1:9/x", false),
            ("http://user:pw@127.0.0.1/x", false),
            ("https://user@example.com/x", false),
            ("http://[::ffff:192.0.2.1]/x", false),
            ("ftp://127.0.0.1/x", false),
            ("file:///etc/passwd", false),
            ("not a url", false),
        ] {
            check_case(url, ok);
        }
    }

    #[test]
    fn errors_hide_the_query() {
        let e = check("http://example.com/x?key=SECRET")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("must use https"), "{e}");
    }

    #[test]
    fn shown_urls_drop_the_query() {
        assert_eq!(
            shown_url("https://a.b/c?key=s"),
            "https://a.b/c?[query omitted]"
        );
        assert_eq!(shown_url("https://a.b/c"), "https://a.b/c");
    }
}

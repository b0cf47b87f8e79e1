//! Request signers for the two Chinese cloud price APIs gpurent queries.
//!
//! * **Alibaba Cloud RPC signature, V1 (HMAC-SHA1)**, used by ECS RPC-style
//!   operations such as `DescribePrice`: the parameters (everything except
//!   `Signature`) are sorted by name, each name and value is percent-encoded
//!   with Alibaba's RFC 3986 rules ([`aliyun_percent_encode`]), joined as
//!   `k=v&k=v`, and then
//!   `StringToSign = Method + "&" + percentEncode("/") + "&" + percentEncode(CanonicalizedQueryString)`
//!   is signed with `HMAC-SHA1(AccessKeySecret + "&")` and Base64-encoded.
//! * **Tencent Cloud API 3.0 `TC3-HMAC-SHA256`**, used by CVM operations such
//!   as `InquiryPriceRunInstances`: a canonical request (method, `/`, query,
//!   canonical headers, signed headers, hex SHA-256 of the payload) is hashed
//!   into a string to sign, which is signed with a key derived by the chain
//!   `SecretDate = HMAC("TC3" + SecretKey, Date)`,
//!   `SecretService = HMAC(SecretDate, Service)`,
//!   `SecretSigning = HMAC(SecretService, "tc3_request")`. The date is the UTC
//!   date of the request timestamp, computed here without a date library.
//!
//! Both signers are pure functions of their inputs (no clock, no randomness):
//! the caller supplies the timestamp / nonce parameters, so the published
//! worked examples can be reproduced byte for byte in the tests below.
//!
//! # Sources of the worked examples used in the tests
//!
//! * Alibaba Cloud: ECS API reference, "Request signatures", Example 1
//!   (`DescribeRegions`, AccessKeyId `testid`, AccessKeySecret `testsecret`,
//!   Timestamp `2016-02-23T12:46:24Z`, SignatureNonce
//!   `3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf`; string-to-sign and signature
//!   `OLeaidS1JvxuMvnyHOwuJ+uX5qY=` are printed in the page). Copied from the
//!   GitHub repository `AlibabaCloudDocs/ecs`, file
//!   `intl.en-US/API Reference/Getting started/Request signatures.md`
//!   (commit 4c4be6ffc29fae6ac14cd761d69cbcc199040ad0), the source of the
//!   ECS "Request signatures" page on alibabacloud.com.
//! * Tencent Cloud: CVM API documentation, "签名方法 v3" (Signature v3),
//!   <https://cloud.tencent.com/document/api/213/30654>, worked example
//!   `DescribeInstances`, timestamp 1551113065, payload
//!   `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
//!   (values copied from a stored copy of the page text).
//!   - Current revision: SecretId `AKID` + 32 `*`, SecretKey 32 `*` (the
//!     masked key is itself the key the example was computed with), signed
//!     headers `content-type;host;x-tc-action`; payload hash `35e9c5b0…`,
//!     canonical-request hash `7019a55b…`, derived keys `da98fb70…`,
//!     `8d70cbef…`, `b596b923…`, signature
//!     `10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f`.
//!   - Earlier revisions (signed headers `content-type;host`, canonical
//!     request hash `5ffe6a04…`). The English "Signature v3" page of Tencent
//!     Cloud International printed SecretId
//!     `AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE`, SecretKey
//!     `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE` (an unmasked example key) and
//!     signature `72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168`
//!     (text taken from a stored copy of that page; its exact URL was not
//!     confirmed). The Chinese page printed SecretKey
//!     `Gu5t9xGARNpq86cd98joQYCN3*******` and signature
//!     `2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c`; no
//!     stored copy of that page revision was found, so this vector rests on the
//!     many independent public test suites that assert it (e.g. a Dart
//!     `tencent_sign` package test, a Ruby `tencent-cloud` client spec, Go and
//!     C# clients), which all agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------
// Alibaba Cloud RPC signature (V1, HMAC-SHA1)
// ---------------------------------------------------------------------------

/// Percent-encodes `s` the way Alibaba Cloud's RPC signature requires.
///
/// UTF-8 bytes of `A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_`, `.` and `~` are kept;
/// every other byte becomes `%XY` with upper-case hex. In particular a space
/// becomes `%20` (never `+`), `*` becomes `%2A` and `~` stays as it is, i.e.
/// `URLEncoder.encode(s).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")`
/// from Alibaba's documentation.
pub fn aliyun_percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The canonicalized query string: parameters sorted by name (the
/// `BTreeMap` order, i.e. byte order, which is what Alibaba's SDKs use),
/// each name and value percent-encoded, joined as `name=value` with `&`.
///
/// `params` must not contain `Signature`.
pub fn aliyun_canonicalized_query(params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&aliyun_percent_encode(k));
        out.push('=');
        out.push_str(&aliyun_percent_encode(v));
    }
    out
}

/// `StringToSign = Method + "&" + percentEncode("/") + "&" + percentEncode(CanonicalizedQueryString)`.
///
/// `method` is upper-cased (`"GET"`, `"POST"`).
pub fn aliyun_string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        aliyun_percent_encode("/"),
        aliyun_percent_encode(&aliyun_canonicalized_query(params))
    )
}

/// Alibaba Cloud RPC (V1) signature: `Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))`.
///
/// `params` holds every request parameter (common and operation-specific)
/// except `Signature`; the result is the raw Base64 value, which the caller
/// must itself percent-encode when putting it in the query string or form body.
pub fn aliyun_rpc_signature(
    method: &str,
    params: &BTreeMap<String, String>,
    access_key_secret: &str,
) -> String {
    let string_to_sign = aliyun_string_to_sign(method, params);
    let key = format!("{access_key_secret}&");
    let mut mac = HmacSha1::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------------------
// Tencent Cloud TC3-HMAC-SHA256
// ---------------------------------------------------------------------------

/// The TC3 algorithm name, also the first word of the `Authorization` header.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of a Tencent Cloud API 3.0 request that enter the TC3 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tc3Request<'a> {
    /// HTTP method, `"POST"` or `"GET"`.
    pub method: &'a str,
    /// Host header, e.g. `"cvm.tencentcloudapi.com"`.
    pub host: &'a str,
    /// Service name, the first label of the host, e.g. `"cvm"`.
    pub service: &'a str,
    /// `Some(action)` additionally signs the `X-TC-Action` header (signed
    /// headers `content-type;host;x-tc-action`, as in the current Tencent
    /// docs and SDKs); `None` signs only `content-type;host`, the minimum
    /// Tencent requires. The `X-TC-Action` header must be sent either way.
    pub action: Option<&'a str>,
    /// Content-Type exactly as sent, e.g. `"application/json; charset=utf-8"`.
    pub content_type: &'a str,
    /// Canonical (already RFC 3986-encoded) query string; `""` for POST.
    pub query: &'a str,
    /// Request body exactly as sent; `""` for GET.
    pub payload: &'a str,
    /// Unix timestamp in seconds, the value of the `X-TC-Timestamp` header.
    pub timestamp: i64,
}

/// Lower-case hex SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Converts days since 1970-01-01 to a proleptic Gregorian `(year, month, day)`.
///
/// Howard Hinnant's `civil_from_days` algorithm
/// (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>),
/// valid for every `i64` day count a Unix timestamp in seconds can produce.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both values are within their stated small ranges, so the casts are exact.
    (year, month as u32, day as u32)
}

/// The UTC date `YYYY-MM-DD` of a Unix timestamp (seconds), as TC3's
/// credential scope requires. E.g. 1551113065 → `2019-02-25` (it is already
/// 2019-02-26 00:44:25 in Beijing, which is why local time must not be used).
pub fn tc3_date(timestamp: i64) -> String {
    let (y, m, d) = civil_from_days(timestamp.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The `SignedHeaders` value for `req`.
pub fn tc3_signed_headers(req: &Tc3Request<'_>) -> &'static str {
    if req.action.is_some() {
        "content-type;host;x-tc-action"
    } else {
        "content-type;host"
    }
}

/// The TC3 canonical request:
/// `Method \n / \n Query \n CanonicalHeaders \n SignedHeaders \n hex(sha256(payload))`,
/// with canonical headers `key:value\n` (keys and values lower-cased and
/// trimmed, keys in ASCII order).
pub fn tc3_canonical_request(req: &Tc3Request<'_>) -> String {
    let mut headers = format!(
        "content-type:{}\nhost:{}\n",
        req.content_type.trim().to_ascii_lowercase(),
        req.host.trim().to_ascii_lowercase()
    );
    if let Some(action) = req.action {
        // Writing to a String cannot fail.
        let _ = writeln!(
            headers,
            "x-tc-action:{}",
            action.trim().to_ascii_lowercase()
        );
    }
    format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        req.query,
        headers,
        tc3_signed_headers(req),
        sha256_hex(req.payload.as_bytes())
    )
}

/// The TC3 credential scope `{date}/{service}/tc3_request`.
pub fn tc3_credential_scope(req: &Tc3Request<'_>) -> String {
    format!("{}/{}/tc3_request", tc3_date(req.timestamp), req.service)
}

/// `TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{hex sha256 canonical request}`.
pub fn tc3_string_to_sign(req: &Tc3Request<'_>) -> String {
    format!(
        "{TC3_ALGORITHM}\n{}\n{}\n{}",
        req.timestamp,
        tc3_credential_scope(req),
        sha256_hex(tc3_canonical_request(req).as_bytes())
    )
}

/// The derived signing key chain `(SecretDate, SecretService, SecretSigning)`.
fn tc3_derived_keys(req: &Tc3Request<'_>, secret_key: &str) -> [[u8; 32]; 3] {
    let secret_date = hmac_sha256(
        format!("TC3{secret_key}").as_bytes(),
        tc3_date(req.timestamp).as_bytes(),
    );
    let secret_service = hmac_sha256(&secret_date, req.service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    [secret_date, secret_service, secret_signing]
}

/// The TC3-HMAC-SHA256 signature of `req` (lower-case hex).
pub fn tc3_signature(req: &Tc3Request<'_>, secret_key: &str) -> String {
    let [_, _, secret_signing] = tc3_derived_keys(req, secret_key);
    hex::encode(hmac_sha256(
        &secret_signing,
        tc3_string_to_sign(req).as_bytes(),
    ))
}

/// The full `Authorization` header value:
/// `TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={..}, Signature={..}`.
pub fn tc3_authorization(req: &Tc3Request<'_>, secret_id: &str, secret_key: &str) -> String {
    format!(
        "{TC3_ALGORITHM} Credential={secret_id}/{}, SignedHeaders={}, Signature={}",
        tc3_credential_scope(req),
        tc3_signed_headers(req),
        tc3_signature(req, secret_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    // --- Alibaba Cloud -----------------------------------------------------

    /// ECS API reference "Request signatures", Example 1 (DescribeRegions).
    /// Source: github.com/AlibabaCloudDocs/ecs,
    /// `intl.en-US/API Reference/Getting started/Request signatures.md`
    /// (commit 4c4be6ffc29fae6ac14cd761d69cbcc199040ad0). Inputs, the
    /// string-to-sign and the signature are copied verbatim from the page.
    fn aliyun_doc_params() -> BTreeMap<String, String> {
        params(&[
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ])
    }

    #[test]
    fn aliyun_doc_example_string_to_sign() {
        assert_eq!(
            aliyun_string_to_sign("GET", &aliyun_doc_params()),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
    }

    #[test]
    fn aliyun_doc_example_signature() {
        assert_eq!(
            aliyun_rpc_signature("GET", &aliyun_doc_params(), "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
        // The page's final URL carries it percent-encoded.
        assert_eq!(
            aliyun_percent_encode("OLeaidS1JvxuMvnyHOwuJ+uX5qY="),
            "OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D"
        );
    }

    #[test]
    fn aliyun_signature_depends_on_method_and_secret() {
        let p = aliyun_doc_params();
        let get = aliyun_rpc_signature("GET", &p, "testsecret");
        assert_ne!(aliyun_rpc_signature("POST", &p, "testsecret"), get);
        assert_ne!(aliyun_rpc_signature("GET", &p, "othersecret"), get);
        // The method is normalised to upper case.
        assert_eq!(aliyun_rpc_signature("get", &p, "testsecret"), get);
    }

    #[test]
    fn aliyun_percent_encoding_rules() {
        assert_eq!(aliyun_percent_encode(""), "");
        assert_eq!(
            aliyun_percent_encode("AZaz09-_.~"),
            "AZaz09-_.~",
            "unreserved characters are kept"
        );
        assert_eq!(aliyun_percent_encode("a b"), "a%20b", "space is %20, not +");
        assert_eq!(aliyun_percent_encode("a*b"), "a%2Ab");
        assert_eq!(aliyun_percent_encode("a+b"), "a%2Bb");
        assert_eq!(aliyun_percent_encode("~"), "~");
        assert_eq!(aliyun_percent_encode("/"), "%2F");
        assert_eq!(aliyun_percent_encode("\""), "%22", "the doc's own example");
        assert_eq!(aliyun_percent_encode("a=b&c"), "a%3Db%26c");
        assert_eq!(
            aliyun_percent_encode("2016-02-23T12:46:24Z"),
            "2016-02-23T12%3A46%3A24Z"
        );
        // Extended UTF-8 characters: one %XY per byte, upper-case hex.
        assert_eq!(
            aliyun_percent_encode("未命名"),
            "%E6%9C%AA%E5%91%BD%E5%90%8D"
        );
        assert_eq!(aliyun_percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn aliyun_canonicalized_query_sorts_and_encodes_names_and_values() {
        let p = params(&[("b", "x y"), ("A", "1"), ("a.1", "*"), ("a", "~")]);
        assert_eq!(aliyun_canonicalized_query(&p), "A=1&a=~&a.1=%2A&b=x%20y");
        assert_eq!(aliyun_canonicalized_query(&BTreeMap::new()), "");
    }

    // --- Tencent Cloud -----------------------------------------------------

    /// Payload of the CVM DescribeInstances worked example, exactly as the
    /// docs print it: the `\u` escapes are literal backslash-u text.
    const TC_DOC_PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn tc_doc_request(action: Option<&'static str>) -> Tc3Request<'static> {
        Tc3Request {
            method: "POST",
            host: "cvm.tencentcloudapi.com",
            service: "cvm",
            action,
            content_type: "application/json; charset=utf-8",
            query: "",
            payload: TC_DOC_PAYLOAD,
            timestamp: 1_551_113_065,
        }
    }

    /// Current revision of Tencent's "签名方法 v3" page
    /// (https://cloud.tencent.com/document/api/213/30654): SecretId
    /// `AKID` + 32 `*`, SecretKey 32 `*`, signed headers include x-tc-action.
    /// Every intermediate value below is printed in the page.
    #[test]
    fn tencent_doc_example_current_revision() {
        let secret_id = "AKID********************************";
        let secret_key = "********************************";
        assert_eq!(secret_key.len(), 32);
        assert_eq!(secret_id.len(), 4 + 32);
        let req = tc_doc_request(Some("DescribeInstances"));

        assert_eq!(
            sha256_hex(TC_DOC_PAYLOAD.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            tc3_canonical_request(&req),
            "POST\n/\n\n\
             content-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\
             x-tc-action:describeinstances\n\n\
             content-type;host;x-tc-action\n\
             35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            tc3_string_to_sign(&req),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        let [date, service, signing] = tc3_derived_keys(&req, secret_key);
        assert_eq!(
            hex::encode(date),
            "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
        );
        assert_eq!(
            hex::encode(service),
            "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"
        );
        assert_eq!(
            hex::encode(signing),
            "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
        );
        assert_eq!(
            tc3_signature(&req, secret_key),
            "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
        assert_eq!(
            tc3_authorization(&req, secret_id, secret_key),
            "TC3-HMAC-SHA256 Credential=AKID********************************/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host;x-tc-action, \
             Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
        );
    }

    /// Earlier revision of the Chinese page (signed headers `content-type;host`,
    /// SecretId `AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******`, SecretKey
    /// `Gu5t9xGARNpq86cd98joQYCN3*******`). The canonical request and string to
    /// sign match the English page; the signature is the value asserted by
    /// independent public test suites (see the module docs).
    #[test]
    fn tencent_doc_example_earlier_revision() {
        let secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
        let secret_key = "Gu5t9xGARNpq86cd98joQYCN3*******";
        let req = tc_doc_request(None);
        assert_eq!(
            tc3_canonical_request(&req),
            "POST\n/\n\n\
             content-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\n\
             content-type;host\n\
             35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            tc3_string_to_sign(&req),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            tc3_signature(&req, secret_key),
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert_eq!(
            tc3_authorization(&req, secret_id, secret_key),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    /// English "Signature v3" page of Tencent Cloud International (stored
    /// copy): unmasked example key `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`, signed
    /// headers `content-type;host`, canonical-request hash `5ffe6a04…`.
    #[test]
    fn tencent_doc_example_intl_english_page() {
        let secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
        let secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
        let req = tc_doc_request(None);
        assert_eq!(
            tc3_authorization(&req, secret_id, secret_key),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tencent_get_request_uses_query_and_empty_payload_hash() {
        let req = Tc3Request {
            method: "get",
            query: "Limit=10&Offset=0",
            payload: "",
            content_type: "application/x-www-form-urlencoded",
            ..tc_doc_request(None)
        };
        assert_eq!(
            tc3_canonical_request(&req),
            "GET\n/\nLimit=10&Offset=0\n\
             content-type:application/x-www-form-urlencoded\n\
             host:cvm.tencentcloudapi.com\n\n\
             content-type;host\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn tencent_signature_depends_on_key_and_date() {
        let req = tc_doc_request(Some("DescribeInstances"));
        let a = tc3_signature(&req, "key-a");
        assert_ne!(a, tc3_signature(&req, "key-b"));
        let next_day = Tc3Request {
            timestamp: req.timestamp + 86_400,
            ..req
        };
        assert_ne!(a, tc3_signature(&next_day, "key-a"));
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn tc3_date_is_utc() {
        assert_eq!(tc3_date(0), "1970-01-01");
        assert_eq!(tc3_date(-1), "1969-12-31");
        assert_eq!(tc3_date(86_399), "1970-01-01");
        assert_eq!(tc3_date(86_400), "1970-01-02");
        // 2019-02-26 00:44:25 in UTC+8 is still 2019-02-25 in UTC.
        assert_eq!(tc3_date(1_551_113_065), "2019-02-25");
        assert_eq!(tc3_date(951_782_400), "2000-02-29"); // leap day, 400-year rule
        assert_eq!(tc3_date(1_709_164_800), "2024-02-29");
        assert_eq!(tc3_date(1_709_251_199), "2024-02-29");
        assert_eq!(tc3_date(1_709_251_200), "2024-03-01");
        assert_eq!(tc3_date(4_102_444_800), "2100-01-01");
        assert_eq!(tc3_date(4_107_542_400), "2100-03-01"); // 2100 is not a leap year
        assert_eq!(tc3_date(253_402_300_799), "9999-12-31");
    }

    #[test]
    fn civil_from_days_round_trips_through_every_day_of_four_centuries() {
        // Independent check: walk forward day by day from 1970-01-01 with a
        // naive calendar and compare.
        let (mut y, mut m, mut d) = (1970_i64, 1_u32, 1_u32);
        for days in 0..146_097_i64 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn tc3_headers_are_lowercased_and_trimmed() {
        let req = Tc3Request {
            host: " CVM.TencentCloudAPI.com ",
            action: Some(" InquiryPriceRunInstances "),
            content_type: "Application/JSON; charset=utf-8",
            ..tc_doc_request(None)
        };
        let canonical = tc3_canonical_request(&req);
        assert!(canonical.contains(
            "content-type:application/json; charset=utf-8\n\
             host:cvm.tencentcloudapi.com\n\
             x-tc-action:inquirypriceruninstances\n\n\
             content-type;host;x-tc-action\n"
        ));
    }
}

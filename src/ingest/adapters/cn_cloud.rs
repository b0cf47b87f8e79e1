//! What the two signed Chinese cloud price APIs (`aliyun`, `tencent`) share: the
//! `ID:SECRET` credentials, the `{region}` endpoint template, the ids that go into
//! queries and page labels, and the three-part page label `<a>__<b>__<c>`.
//!
//! Invariant: a credentials error names the expected form, never the value.

use super::AdapterError;

/// One signed cloud API: how its errors word the credentials and the page labels.
pub struct Cloud {
    /// The cloud's name, e.g. "Alibaba Cloud".
    pub name: &'static str,
    /// The `auth_env` value's form, e.g. "ACCESS_KEY_ID:ACCESS_KEY_SECRET".
    pub key_form: &'static str,
    /// The page label's form, e.g. `"<Region>__<Zone>__<InstanceType>"`.
    pub label_form: &'static str,
}

impl Cloud {
    /// The `ID:SECRET` pair from the variable named by `auth_env`.
    pub fn credentials<'a>(
        &self,
        secret: Option<&'a str>,
    ) -> Result<(&'a str, &'a str), AdapterError> {
        let s = secret.ok_or(AdapterError::NoCredentials {
            cloud: self.name,
            form: self.key_form,
        })?;
        match s.split_once(':') {
            Some((id, key)) if !id.is_empty() && !key.is_empty() => Ok((id, key)),
            _ => Err(AdapterError::BadCredentials {
                form: self.key_form,
            }),
        }
    }

    /// The three non-empty parts of a page label.
    pub fn parse_label<'l>(
        &self,
        label: &'l str,
    ) -> Result<(&'l str, &'l str, &'l str), AdapterError> {
        let parts: Vec<&str> = label.split("__").collect();
        match parts.as_slice() {
            [a, b, c] if !a.is_empty() && !b.is_empty() && !c.is_empty() => Ok((a, b, c)),
            _ => Err(self.bad_label(label)),
        }
    }

    /// The error for a page label not of [`Cloud::label_form`].
    pub fn bad_label(&self, label: &str) -> AdapterError {
        AdapterError::Label {
            label: label.to_string(),
            form: self.label_form,
        }
    }
}

/// A page label from its three parts (each a [`valid_id`]).
pub fn label(a: &str, b: &str, c: &str) -> String {
    format!("{a}__{b}__{c}")
}

/// An id that may go into a query, a page label and a file name: letters, digits,
/// `-`, `_`, `.`, and no `__` (the label separator).
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("__")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The `{region}` endpoint template of a signed API, filled in.
pub fn endpoint_for(template: &str, region: &str) -> String {
    template.replace("{region}", region)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD: Cloud = Cloud {
        name: "Some Cloud",
        key_form: "ID:KEY",
        label_form: "<A>__<B>__<C>",
    };

    fn check_label(label: &str, expected: Option<(&str, &str, &str)>) {
        let got = CLOUD.parse_label(label).ok();
        assert_eq!(got, expected, "{label}");
    }

    #[test]
    fn labels() {
        check_label("a__b__c", Some(("a", "b", "c")));
        check_label(&label("r", "z", "t.x"), Some(("r", "z", "t.x")));
        for bad in ["", "a__b", "a__b__c__d", "a____c", "__b__c", "a__b__"] {
            check_label(bad, None);
        }
        assert_eq!(
            CLOUD.parse_label("x").unwrap_err().to_string(),
            "page label \"x\" is not <A>__<B>__<C>; a recorded replay is a directory of files named that way"
        );
    }

    #[test]
    fn credentials_are_never_echoed() {
        assert_eq!(CLOUD.credentials(Some("i:k")).unwrap(), ("i", "k"));
        assert_eq!(
            CLOUD.credentials(None).unwrap_err().to_string(),
            "Some Cloud requests must be signed: set `auth_env` to a variable holding ID:KEY"
        );
        for bad in ["SECRETVALUE", ":SECRETVALUE", "SECRETVALUE:"] {
            let e = CLOUD.credentials(Some(bad)).unwrap_err().to_string();
            assert_eq!(e, "the variable named by `auth_env` must hold ID:KEY");
        }
    }

    #[test]
    fn ids() {
        for (s, ok) in [
            ("cn-beijing", true),
            ("ecs.gn7i-c8g1.2xlarge", true),
            ("a_b", true),
        ] {
            assert_eq!(valid_id(s), ok, "{s}");
        }
        for s in ["", "a b", "a__b", "a/b", "a?b"] {
            assert!(!valid_id(s), "{s}");
        }
    }
}

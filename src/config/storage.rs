//! `STORAGE_URL` and the standard `AWS_*` variables: where recordings, transcripts and summaries
//! live when they are not files in `DATA_DIR`.
//!
//! Only `s3://bucket/prefix` is understood (any S3-compatible server: AWS, Garage, MinIO, R2…).
//! The secret key is a [`Secret`]; [`StorageUrl::shown`] is what logs and health may print.

use std::fmt;

use super::{ConfigError, Secret, bad};

const VARIABLE: &str = "STORAGE_URL";

/// A bucket (and a key prefix inside it) on an S3-compatible server, with how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageUrl {
    pub bucket: String,
    /// Keys start with `<prefix>/` (no leading or trailing slash; empty = the bucket's root).
    pub prefix: String,
    /// `AWS_ENDPOINT_URL`: a non-AWS server, addressed path-style (`http://` is allowed as given).
    pub endpoint: Option<String>,
    /// `AWS_REGION`, default `us-east-1`.
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl StorageUrl {
    /// Reads `s3://bucket/prefix`, taking the endpoint, region and credentials from `lookup`
    /// (the `AWS_*` variables; empty values count as unset).
    pub fn parse(
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let value = value.trim();
        let Some(rest) = value.strip_prefix("s3://") else {
            return Err(bad(
                VARIABLE,
                format!(
                    "must start with s3:// (got {value:?}); unset it to keep the files in DATA_DIR"
                ),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !bucket_ok {
            return Err(bad(
                VARIABLE,
                format!(
                    "names no valid bucket (3 to 63 lower-case letters, digits, '-' or '.'; got {bucket:?}); expected s3://bucket/prefix"
                ),
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        let segments_ok = prefix.is_empty()
            || prefix.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && !segment.chars().any(|c| c.is_control())
            });
        if !segments_ok {
            return Err(bad(
                VARIABLE,
                format!("has an unusable prefix {prefix:?} (empty, '.' or '..' segments)"),
            ));
        }
        let vars = Lookup(lookup);
        let endpoint = match vars.string("AWS_ENDPOINT_URL") {
            Some(endpoint) => {
                let url = url::Url::parse(&endpoint).map_err(|error| {
                    bad(
                        "AWS_ENDPOINT_URL",
                        format!("is not a URL ({error}): {endpoint:?}"),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(bad(
                        "AWS_ENDPOINT_URL",
                        format!("must be an http:// or https:// URL (got {endpoint:?})"),
                    ));
                }
                Some(endpoint.trim_end_matches('/').to_string())
            }
            None => None,
        };
        let access_key_id = vars.string("AWS_ACCESS_KEY_ID");
        let secret_access_key = vars.string("AWS_SECRET_ACCESS_KEY").map(Secret::new);
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err(bad(
                "AWS_ACCESS_KEY_ID",
                "and AWS_SECRET_ACCESS_KEY must be set together",
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region: vars
                .string("AWS_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id,
            secret_access_key,
        })
    }

    /// `s3://bucket/prefix at http://endpoint`: no credentials, safe to log.
    pub fn shown(&self) -> String {
        let mut shown = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            shown.push('/');
            shown.push_str(&self.prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            shown.push_str(" at ");
            shown.push_str(endpoint);
        }
        shown
    }

    /// The same bucket under another prefix (tests give each app its own).
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_matches('/').to_string(),
            ..self.clone()
        }
    }
}

/// The `AWS_*` variables, trimmed; empty values count as unset.
struct Lookup<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Lookup<'_> {
    fn string(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn reads_bucket_prefix_and_the_aws_variables() {
        let url = StorageUrl::parse(
            "s3://meetings/focusflow/prod/",
            &vars(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ]),
        )
        .unwrap();
        assert_eq!(url.bucket, "meetings");
        assert_eq!(url.prefix, "focusflow/prod");
        assert_eq!(url.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(url.region, "us-east-1");
        assert_eq!(
            url.shown(),
            "s3://meetings/focusflow/prod at http://127.0.0.1:9000"
        );
        assert!(!format!("{url:?}").contains("very-secret"));
        let bare = StorageUrl::parse("s3://meetings", &vars(&[("AWS_REGION", "eu-west-3")]));
        let bare = bare.unwrap();
        assert_eq!(
            (bare.prefix.as_str(), bare.region.as_str()),
            ("", "eu-west-3")
        );
    }

    #[test]
    fn refuses_what_is_not_a_bucket() {
        for value in [
            "meetings",
            "gs://meetings",
            "s3://",
            "s3://A_B/x",
            "s3://ok-bucket/a/../b",
        ] {
            let error = StorageUrl::parse(value, &vars(&[])).unwrap_err();
            assert_eq!(error.variable, "STORAGE_URL", "{value}");
        }
        let error = StorageUrl::parse("s3://bucket", &vars(&[("AWS_ENDPOINT_URL", "ftp://x")]))
            .unwrap_err();
        assert_eq!(error.variable, "AWS_ENDPOINT_URL");
        let error =
            StorageUrl::parse("s3://bucket", &vars(&[("AWS_ACCESS_KEY_ID", "x")])).unwrap_err();
        assert!(error.message.contains("together"), "{}", error.message);
    }
}

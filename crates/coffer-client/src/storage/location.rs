//! Storage locations: URL parsing and the OpenDAL configuration each provider needs.
//!
//! A location is what the user types (`s3://bucket/prefix`, a folder path, …). The
//! configuration behind it is assembled from three sources, later ones winning:
//!
//! 1. the provider's usual environment variables (`AWS_ACCESS_KEY_ID`, …);
//! 2. the profile's `[storage_options]` table in `config.toml`;
//! 3. the URL's query string, which may only carry settings that are not secret
//!    (a URL is printed in listings and error messages).
//!
//! Secret values are collected as they are resolved so that every storage error can be
//! scrubbed of them before anyone sees it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::ClientError;

/// The providers this build can store backups with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    S3,
    Gcs,
    Azblob,
    Webdav { tls: bool },
    Gdrive,
    Onedrive,
    Dropbox,
}

impl Provider {
    fn from_scheme(scheme: &str) -> Option<Provider> {
        Some(match scheme {
            "s3" => Provider::S3,
            "gs" | "gcs" => Provider::Gcs,
            "azblob" => Provider::Azblob,
            "webdav" => Provider::Webdav { tls: false },
            "webdavs" => Provider::Webdav { tls: true },
            "gdrive" => Provider::Gdrive,
            "onedrive" => Provider::Onedrive,
            "dropbox" => Provider::Dropbox,
            _ => return None,
        })
    }

    /// The URL scheme, as printed.
    pub fn scheme(self) -> &'static str {
        match self {
            Provider::S3 => "s3",
            Provider::Gcs => "gs",
            Provider::Azblob => "azblob",
            Provider::Webdav { tls: false } => "webdav",
            Provider::Webdav { tls: true } => "webdavs",
            Provider::Gdrive => "gdrive",
            Provider::Onedrive => "onedrive",
            Provider::Dropbox => "dropbox",
        }
    }

    /// The OpenDAL service name.
    fn service(self) -> &'static str {
        match self {
            Provider::S3 => "s3",
            Provider::Gcs => "gcs",
            Provider::Azblob => "azblob",
            Provider::Webdav { .. } => "webdav",
            Provider::Gdrive => "gdrive",
            Provider::Onedrive => "onedrive",
            Provider::Dropbox => "dropbox",
        }
    }

    /// Whether the URL's authority names a bucket or container (else the whole path is
    /// a folder in the user's drive).
    fn has_bucket(self) -> bool {
        matches!(
            self,
            Provider::S3 | Provider::Gcs | Provider::Azblob | Provider::Webdav { .. }
        )
    }

    /// Settings a URL query may carry: none of them is a secret.
    fn public_keys(self) -> &'static [&'static str] {
        match self {
            Provider::S3 => &[
                "endpoint",
                "region",
                "profile",
                "role_arn",
                "default_storage_class",
                "enable_virtual_host_style",
                "allow_anonymous",
                "disable_config_load",
                "disable_ec2_metadata",
            ],
            Provider::Gcs => &[
                "endpoint",
                "credential_path",
                "service_account",
                "default_storage_class",
                "allow_anonymous",
                "disable_vm_metadata",
                "disable_config_load",
            ],
            Provider::Azblob => &["endpoint", "account_name"],
            Provider::Webdav { .. } => &["username"],
            Provider::Gdrive | Provider::Onedrive | Provider::Dropbox => &["client_id"],
        }
    }

    /// Every setting the profile may hold for this provider, secrets included.
    fn all_keys(self) -> Vec<&'static str> {
        let secrets: &[&str] = match self {
            Provider::S3 => &[
                "access_key_id",
                "secret_access_key",
                "session_token",
                "external_id",
            ],
            Provider::Gcs => &["credential", "token"],
            Provider::Azblob => &["account_key", "sas_token"],
            Provider::Webdav { .. } => &["password", "token"],
            Provider::Gdrive | Provider::Onedrive | Provider::Dropbox => {
                &["access_token", "refresh_token", "client_secret"]
            }
        };
        let mut keys = self.public_keys().to_vec();
        keys.extend_from_slice(secrets);
        keys
    }

    /// Environment variables read for each setting, in order of preference.
    fn env_vars(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Provider::S3 => &[
                ("access_key_id", &["AWS_ACCESS_KEY_ID"]),
                ("secret_access_key", &["AWS_SECRET_ACCESS_KEY"]),
                ("session_token", &["AWS_SESSION_TOKEN"]),
                ("region", &["AWS_REGION", "AWS_DEFAULT_REGION"]),
                ("endpoint", &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]),
                ("profile", &["AWS_PROFILE"]),
            ],
            Provider::Gcs => &[
                ("credential_path", &["GOOGLE_APPLICATION_CREDENTIALS"]),
                ("endpoint", &["STORAGE_EMULATOR_HOST"]),
            ],
            Provider::Azblob => &[
                (
                    "account_name",
                    &["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"],
                ),
                (
                    "account_key",
                    &["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"],
                ),
                ("sas_token", &["AZURE_STORAGE_SAS_TOKEN"]),
                ("endpoint", &["AZURE_STORAGE_ENDPOINT"]),
            ],
            Provider::Webdav { .. } => &[
                ("username", &["COFFER_WEBDAV_USERNAME"]),
                ("password", &["COFFER_WEBDAV_PASSWORD"]),
                ("token", &["COFFER_WEBDAV_TOKEN"]),
            ],
            Provider::Gdrive => &[
                ("access_token", &["COFFER_GDRIVE_ACCESS_TOKEN"]),
                ("refresh_token", &["COFFER_GDRIVE_REFRESH_TOKEN"]),
                ("client_id", &["COFFER_GDRIVE_CLIENT_ID"]),
                ("client_secret", &["COFFER_GDRIVE_CLIENT_SECRET"]),
            ],
            Provider::Onedrive => &[
                ("access_token", &["COFFER_ONEDRIVE_ACCESS_TOKEN"]),
                ("refresh_token", &["COFFER_ONEDRIVE_REFRESH_TOKEN"]),
                ("client_id", &["COFFER_ONEDRIVE_CLIENT_ID"]),
                ("client_secret", &["COFFER_ONEDRIVE_CLIENT_SECRET"]),
            ],
            Provider::Dropbox => &[
                ("access_token", &["COFFER_DROPBOX_ACCESS_TOKEN"]),
                ("refresh_token", &["COFFER_DROPBOX_REFRESH_TOKEN"]),
                ("client_id", &["COFFER_DROPBOX_CLIENT_ID"]),
                ("client_secret", &["COFFER_DROPBOX_CLIENT_SECRET"]),
            ],
        }
    }
}

/// Settings of ours (not OpenDAL's) that any location may carry.
const OWN_KEYS: &[&str] = &["timeout", "retries", "upload", "deadline"];

/// The default limit on one storage request, and on each read or write within one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a failed request is retried by default. The backoff doubles from 0.5 s,
/// with jitter: 15 to 30 s in all.
pub const DEFAULT_RETRIES: usize = 5;

/// A parsed storage location. Only what the URL names: secrets never appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local (or synced) folder.
    Fs { root: PathBuf },
    /// A bucket, container, WebDAV share or drive folder of a provider.
    Remote(RemoteUrl),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub provider: Provider,
    /// Bucket or container (S3, GCS, Azure), `host[:port]` (WebDAV); empty for drives.
    pub bucket: String,
    /// The folder inside it, as `/a/b/` (`/` for the top).
    pub prefix: String,
    /// Non-secret settings from the query string.
    pub query: BTreeMap<String, String>,
}

impl StorageUrl {
    /// Parses `file:///abs/path`, a plain absolute or relative path, or a provider URL.
    pub fn parse(text: &str) -> Result<StorageUrl, ClientError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ClientError::Usage("the storage location is empty".into()));
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(ClientError::Usage(format!(
                    "a file:// URL needs an absolute path (file:///…), got {text:?}"
                )));
            }
            return Ok(StorageUrl::Fs { root: rest.into() });
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            return RemoteUrl::parse(scheme, rest).map(StorageUrl::Remote);
        }
        let path = Path::new(text);
        let root = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| ClientError::io("reading the current directory", ".", e))?
                .join(path)
        };
        Ok(StorageUrl::Fs { root })
    }

    /// Canonical text form, safe to print and to store in a profile.
    pub fn display(&self) -> String {
        match self {
            StorageUrl::Fs { root } => root.display().to_string(),
            StorageUrl::Remote(r) => r.to_string(),
        }
    }
}

impl RemoteUrl {
    fn parse(scheme: &str, rest: &str) -> Result<RemoteUrl, ClientError> {
        let provider = Provider::from_scheme(&scheme.to_ascii_lowercase()).ok_or_else(|| {
            ClientError::Usage(format!(
                "unknown storage scheme {scheme}://; use a folder path, file://, s3://, gs://, \
                 azblob://, webdav://, webdavs://, gdrive://, onedrive:// or dropbox://"
            ))
        })?;
        let (location, query_text) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = if provider.has_bucket() {
            location.split_once('/').unwrap_or((location, ""))
        } else {
            ("", location)
        };
        if authority.contains('@') {
            return Err(ClientError::Usage(format!(
                "put storage credentials in the environment or the profile, not in the URL \
                 ({}:// URLs are printed)",
                provider.scheme()
            )));
        }
        if provider.has_bucket() && authority.is_empty() {
            return Err(ClientError::Usage(format!(
                "{}:// needs a {} name: {}://NAME/optional/folder",
                provider.scheme(),
                if matches!(provider, Provider::Webdav { .. }) {
                    "host"
                } else {
                    "bucket"
                },
                provider.scheme()
            )));
        }
        let mut segments = Vec::new();
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            if seg == "." || seg == ".." {
                return Err(ClientError::Usage(format!(
                    "the storage path may not contain {seg:?}"
                )));
            }
            segments.push(seg);
        }
        let prefix = if segments.is_empty() {
            "/".to_string()
        } else {
            format!("/{}/", segments.join("/"))
        };
        let mut query = BTreeMap::new();
        for pair in query_text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
            if OWN_KEYS.contains(&k) || provider.public_keys().contains(&k) {
                query.insert(k.to_string(), v.to_string());
            } else if provider.all_keys().contains(&k) {
                return Err(ClientError::Usage(format!(
                    "{k} is a secret: set it in the environment or the profile's \
                     [storage_options], not in the URL"
                )));
            } else {
                return Err(ClientError::Usage(format!(
                    "unknown setting {k:?} for {}://; known: {}",
                    provider.scheme(),
                    known_keys(provider).join(", ")
                )));
            }
        }
        Ok(RemoteUrl {
            provider,
            bucket: authority.to_string(),
            prefix,
            query,
        })
    }
}

fn known_keys(provider: Provider) -> Vec<&'static str> {
    let mut keys = provider.public_keys().to_vec();
    keys.extend_from_slice(OWN_KEYS);
    keys
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.provider.scheme(), self.bucket)?;
        if self.provider.has_bucket() {
            f.write_str(self.prefix.trim_end_matches('/'))?;
        } else {
            f.write_str(self.prefix.trim_matches('/'))?;
        }
        let mut sep = '?';
        for (k, v) in &self.query {
            write!(f, "{sep}{k}={v}")?;
            sep = '&';
        }
        Ok(())
    }
}

/// Everything needed to open an OpenDAL operator for a location.
pub struct Resolved {
    pub service: &'static str,
    pub config: Vec<(String, Zeroizing<String>)>,
    /// Values that must never be shown (scrubbed from errors).
    pub secrets: Vec<Zeroizing<String>>,
    pub timeout: Duration,
    pub retries: usize,
    /// The time every download and listing gets besides its size (`limits`).
    pub deadline: Duration,
    /// `upload=segments`: store backups as segments even where multipart uploads exist
    /// (for S3-compatible services and emulators whose multipart support is missing).
    pub force_segments: bool,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.config.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Resolved")
            .field("service", &self.service)
            .field("config_keys", &keys)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Resolved {
    fn get(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Builds the configuration for `url` from the environment (`env`), the profile's
/// settings and the URL itself.
pub fn resolve(
    url: &StorageUrl,
    profile: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ClientError> {
    let remote = match url {
        StorageUrl::Fs { root } => {
            return Ok(Resolved {
                service: "fs",
                config: vec![(
                    "root".into(),
                    Zeroizing::new(root.to_string_lossy().into_owned()),
                )],
                secrets: Vec::new(),
                timeout: timeout_setting(profile.get("timeout").map(String::as_str))?,
                retries: retries_setting(profile.get("retries").map(String::as_str))?,
                deadline: deadline_setting(profile.get("deadline").map(String::as_str))?,
                force_segments: false,
            })
        }
        StorageUrl::Remote(r) => r,
    };
    let p = remote.provider;
    let mut settings: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    for (key, vars) in p.env_vars() {
        if let Some(v) = vars.iter().find_map(|v| env(v).filter(|s| !s.is_empty())) {
            settings.insert(key.to_string(), Zeroizing::new(v));
        }
    }
    let allowed = p.all_keys();
    for (k, v) in profile {
        if !allowed.contains(&k.as_str()) && !OWN_KEYS.contains(&k.as_str()) {
            return Err(ClientError::Usage(format!(
                "the profile's storage option {k:?} is not a {}:// setting; known: {}",
                p.scheme(),
                allowed.join(", ")
            )));
        }
        settings.insert(k.clone(), Zeroizing::new(v.clone()));
    }
    for (k, v) in &remote.query {
        settings.insert(k.clone(), Zeroizing::new(v.clone()));
    }
    let timeout = timeout_setting(settings.remove("timeout").as_deref().map(|s| s.as_str()))?;
    let retries = retries_setting(settings.remove("retries").as_deref().map(|s| s.as_str()))?;
    let deadline = deadline_setting(settings.remove("deadline").as_deref().map(|s| s.as_str()))?;
    let force_segments = match settings.remove("upload").as_deref().map(|s| s.as_str()) {
        None | Some("auto") => false,
        Some("segments") => true,
        Some(other) => {
            return Err(ClientError::Usage(format!(
                "upload={other} is not known; use auto or segments"
            )))
        }
    };
    let public = p.public_keys();
    let secrets: Vec<Zeroizing<String>> = settings
        .iter()
        .filter(|(k, v)| !public.contains(&k.as_str()) && v.len() >= 4)
        .map(|(_, v)| v.clone())
        .collect();

    let mut config: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut set = |k: &str, v: &str| config.push((k.to_string(), Zeroizing::new(v.to_string())));
    match p {
        Provider::S3 | Provider::Gcs => {
            set("bucket", &remote.bucket);
            set("root", &remote.prefix);
        }
        Provider::Azblob => {
            set("container", &remote.bucket);
            set("root", &remote.prefix);
        }
        Provider::Webdav { tls } => {
            let scheme = if tls { "https" } else { "http" };
            set("endpoint", &format!("{scheme}://{}", remote.bucket));
            set("root", &remote.prefix);
        }
        Provider::Gdrive | Provider::Onedrive | Provider::Dropbox => {
            set("root", &remote.prefix);
        }
    }
    // Emulators and S3-compatible services: a custom endpoint needs path-style
    // addressing and usually has no notion of regions.
    if p == Provider::S3 && settings.contains_key("endpoint") && !settings.contains_key("region") {
        set("region", "us-east-1");
    }
    if p == Provider::Gcs {
        if let Some(ep) = settings.get_mut("endpoint") {
            if !ep.contains("://") {
                // STORAGE_EMULATOR_HOST is `host:port` by convention.
                *ep = Zeroizing::new(format!("http://{}", ep.as_str()));
            }
            if env("STORAGE_EMULATOR_HOST").is_some() {
                set("allow_anonymous", "true");
                set("disable_vm_metadata", "true");
                set("disable_config_load", "true");
            }
        }
    }
    if p == Provider::Azblob && !settings.contains_key("endpoint") {
        if let Some(account) = settings.get("account_name") {
            let ep = format!("https://{}.blob.core.windows.net", account.as_str());
            set("endpoint", &ep);
        }
    }
    for (k, v) in settings {
        config.push((k, v));
    }
    let resolved = Resolved {
        service: p.service(),
        config,
        secrets,
        timeout,
        retries,
        deadline,
        force_segments,
    };
    check_required(p, &resolved)?;
    Ok(resolved)
}

/// Fails early, with the variables to set, when a provider cannot possibly work.
fn check_required(p: Provider, r: &Resolved) -> Result<(), ClientError> {
    let missing = |what: &str| {
        Err(ClientError::Usage(format!(
            "{}:// needs {what}; see docs/STORAGE.md",
            p.scheme()
        )))
    };
    match p {
        Provider::Azblob if r.get("account_name").is_none() && r.get("endpoint").is_none() => {
            missing("a storage account: set AZURE_STORAGE_ACCOUNT")
        }
        Provider::Gdrive | Provider::Onedrive | Provider::Dropbox
            if r.get("access_token").is_none() && r.get("refresh_token").is_none() =>
        {
            let name = p.scheme().to_ascii_uppercase();
            missing(&format!(
                "an OAuth token: set COFFER_{name}_ACCESS_TOKEN, or COFFER_{name}_REFRESH_TOKEN \
                 with COFFER_{name}_CLIENT_ID and COFFER_{name}_CLIENT_SECRET"
            ))
        }
        Provider::Gdrive | Provider::Onedrive | Provider::Dropbox
            if r.get("access_token").is_none()
                && (r.get("client_id").is_none() || r.get("client_secret").is_none()) =>
        {
            missing("a client id and client secret to use a refresh token")
        }
        _ => Ok(()),
    }
}

fn timeout_setting(value: Option<&str>) -> Result<Duration, ClientError> {
    duration_setting("timeout", value, DEFAULT_TIMEOUT)
}

fn deadline_setting(value: Option<&str>) -> Result<Duration, ClientError> {
    duration_setting("deadline", value, super::limits::DEFAULT_DEADLINE)
}

fn duration_setting(
    name: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ClientError> {
    match value {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v)
            .or_else(|_| v.parse::<u64>().map(Duration::from_secs))
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "{name} {v:?} is not a duration (for example 30s or 2m)"
                ))
            }),
    }
}

fn retries_setting(value: Option<&str>) -> Result<usize, ClientError> {
    match value {
        None => Ok(DEFAULT_RETRIES),
        Some(v) => v.parse::<usize>().ok().filter(|&n| n <= 20).ok_or_else(|| {
            ClientError::Usage(format!("retries {v:?} is not a number from 0 to 20"))
        }),
    }
}

/// Replaces every secret in `text` with `***`.
pub fn scrub(text: &str, secrets: &[Zeroizing<String>]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(text: &str) -> RemoteUrl {
        match StorageUrl::parse(text).unwrap() {
            StorageUrl::Remote(r) => r,
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    fn config(
        text: &str,
        profile: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let profile = profile
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = resolve(&StorageUrl::parse(text)?, &profile, &|k| {
            env.get(k).cloned()
        })?;
        Ok(r.config
            .into_iter()
            .map(|(k, v)| (k, v.as_str().to_string()))
            .collect())
    }

    #[test]
    fn provider_urls_parse_and_print_back() {
        for (text, canonical) in [
            ("s3://bkt", "s3://bkt"),
            ("s3://bkt/a/b/", "s3://bkt/a/b"),
            ("S3://bkt//a", "s3://bkt/a"),
            (
                "s3://bkt/p?endpoint=http://127.0.0.1:9000&region=eu-west-1",
                "s3://bkt/p?endpoint=http://127.0.0.1:9000&region=eu-west-1",
            ),
            ("gs://bkt/p", "gs://bkt/p"),
            ("gcs://bkt/p", "gs://bkt/p"),
            ("azblob://container/p", "azblob://container/p"),
            ("webdav://host:8080/dav/p", "webdav://host:8080/dav/p"),
            (
                "webdavs://host/p?username=ann",
                "webdavs://host/p?username=ann",
            ),
            ("gdrive://Backups/coffer", "gdrive://Backups/coffer"),
            ("onedrive://Apps/Coffer", "onedrive://Apps/Coffer"),
            ("dropbox://coffer", "dropbox://coffer"),
            ("dropbox://", "dropbox://"),
        ] {
            let r = remote(text);
            assert_eq!(r.to_string(), canonical, "{text}");
            assert_eq!(remote(canonical), r, "{canonical} parses back to the same");
        }
        let r = remote("gdrive://Backups/coffer");
        assert_eq!(
            (r.bucket.as_str(), r.prefix.as_str()),
            ("", "/Backups/coffer/")
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, says) in [
            ("ftp://x", "unknown storage scheme"),
            ("s3://", "needs a bucket"),
            ("webdav:///p", "needs a host"),
            ("s3://key:secret@bkt/p", "not in the URL"),
            ("s3://bkt/p?secret_access_key=x", "is a secret"),
            ("webdav://h/p?password=x", "is a secret"),
            ("s3://bkt/p?colour=blue", "unknown setting"),
            ("s3://bkt/a/../b", "may not contain"),
        ] {
            let err = StorageUrl::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn settings_come_from_env_then_profile_then_url() {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let c = config("s3://bkt/p", &[], &env).unwrap();
        assert_eq!(c["bucket"], "bkt");
        assert_eq!(c["root"], "/p/");
        assert_eq!(c["access_key_id"], "AKIAENV");
        assert_eq!(c["secret_access_key"], "env-secret");
        assert_eq!(c["region"], "eu-west-1");
        let c = config(
            "s3://bkt/p?region=us-west-2",
            &[
                ("secret_access_key", "profile-secret"),
                ("region", "ap-south-1"),
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c["secret_access_key"], "profile-secret");
        assert_eq!(c["region"], "us-west-2");
        // A custom endpoint without a region gets a placeholder one.
        let c = config("s3://bkt?endpoint=http://127.0.0.1:9", &[], &[]).unwrap();
        assert_eq!(c["region"], "us-east-1");
        // Unknown profile settings are refused, not ignored.
        let err = config("s3://bkt", &[("passwd", "x")], &[]).unwrap_err();
        assert!(err.to_string().contains("not a s3:// setting"), "{err}");
    }

    #[test]
    fn provider_specific_configuration() {
        let c = config(
            "gs://bkt/p",
            &[],
            &[("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")],
        )
        .unwrap();
        assert_eq!(c["endpoint"], "http://127.0.0.1:9023");
        assert_eq!(c["allow_anonymous"], "true");
        let c = config(
            "gs://bkt",
            &[],
            &[("GOOGLE_APPLICATION_CREDENTIALS", "/k.json")],
        )
        .unwrap();
        assert_eq!(c["credential_path"], "/k.json");
        assert!(!c.contains_key("allow_anonymous"));

        let c = config(
            "azblob://photos/p",
            &[],
            &[
                ("AZURE_STORAGE_ACCOUNT", "acct"),
                ("AZURE_STORAGE_KEY", "a2V5"),
            ],
        )
        .unwrap();
        assert_eq!(c["container"], "photos");
        assert_eq!(c["endpoint"], "https://acct.blob.core.windows.net");
        assert_eq!(c["account_key"], "a2V5");
        assert!(config("azblob://photos", &[], &[]).is_err());

        let c = config(
            "webdavs://dav.example:8443/remote.php/dav?username=ann",
            &[],
            &[("COFFER_WEBDAV_PASSWORD", "pw-from-env")],
        )
        .unwrap();
        assert_eq!(c["endpoint"], "https://dav.example:8443");
        assert_eq!(c["root"], "/remote.php/dav/");
        assert_eq!(c["username"], "ann");
        assert_eq!(c["password"], "pw-from-env");

        for (scheme, var) in [
            ("gdrive", "GDRIVE"),
            ("onedrive", "ONEDRIVE"),
            ("dropbox", "DROPBOX"),
        ] {
            let url = format!("{scheme}://Backups/coffer");
            let err = config(&url, &[], &[]).unwrap_err().to_string();
            assert!(err.contains(&format!("COFFER_{var}_ACCESS_TOKEN")), "{err}");
            let token = format!("COFFER_{var}_ACCESS_TOKEN");
            let c = config(&url, &[], &[(token.as_str(), "tok")]).unwrap();
            assert_eq!(c["root"], "/Backups/coffer/");
            assert_eq!(c["access_token"], "tok");
            // A refresh token needs the client's id and secret.
            let refresh = format!("COFFER_{var}_REFRESH_TOKEN");
            assert!(config(&url, &[], &[(refresh.as_str(), "r")]).is_err());
            let c = config(
                &url,
                &[("client_id", "id"), ("client_secret", "cs")],
                &[(refresh.as_str(), "rtok")],
            )
            .unwrap();
            assert_eq!(c["refresh_token"], "rtok");
        }
    }

    #[test]
    fn secrets_are_collected_and_scrubbed() {
        let r = resolve(
            &StorageUrl::parse("s3://bkt?endpoint=http://h:1").unwrap(),
            &BTreeMap::from([("secret_access_key".to_string(), "s3cr3t-value".to_string())]),
            &|k| (k == "AWS_SESSION_TOKEN").then(|| "session-tok".to_string()),
        )
        .unwrap();
        assert_eq!(r.secrets.len(), 2);
        let text = "signing with s3cr3t-value and session-tok failed at http://h:1";
        assert_eq!(
            scrub(text, &r.secrets),
            "signing with *** and *** failed at http://h:1"
        );
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("secret_access_key"),
            "{shown}"
        );
    }

    #[test]
    fn timeouts_parse() {
        let url = StorageUrl::parse("s3://b?timeout=5s").unwrap();
        let r = resolve(&url, &BTreeMap::new(), &|_| None).unwrap();
        assert_eq!(r.timeout, Duration::from_secs(5));
        assert!(r.config.iter().all(|(k, _)| k != "timeout"));
        assert_eq!(r.retries, DEFAULT_RETRIES);
        let url = StorageUrl::parse("s3://b?retries=0").unwrap();
        assert_eq!(
            resolve(&url, &BTreeMap::new(), &|_| None).unwrap().retries,
            0
        );
        let url = StorageUrl::parse("s3://b?retries=many").unwrap();
        assert!(resolve(&url, &BTreeMap::new(), &|_| None).is_err());
        let url = StorageUrl::parse("s3://b?timeout=soon").unwrap();
        assert!(resolve(&url, &BTreeMap::new(), &|_| None).is_err());
        let url = StorageUrl::parse("/srv/b").unwrap();
        let r = resolve(&url, &BTreeMap::new(), &|_| None).unwrap();
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
        assert_eq!(r.deadline, super::super::limits::DEFAULT_DEADLINE);
        let url = StorageUrl::parse("s3://b?deadline=5s").unwrap();
        let r = resolve(&url, &BTreeMap::new(), &|_| None).unwrap();
        assert_eq!(r.deadline, Duration::from_secs(5));
        assert!(r.config.iter().all(|(k, _)| k != "deadline"));
        let url = StorageUrl::parse("s3://b?deadline=0s").unwrap();
        assert!(resolve(&url, &BTreeMap::new(), &|_| None).is_err());
    }
}

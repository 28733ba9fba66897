//! The admin key: what `POST /reload`, `/deploy` and `/rollback` require, as
//! `Authorization: Bearer <key>`. It comes from `TERN_ADMIN_KEY` or the file `admin.key_file`
//! names, never from the YAML itself, and is never logged.

use std::path::Path;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{secret, settings::AdminSettings};

/// The environment variable holding the key, on the host and for `tern deploy`.
pub const KEY_VAR: &str = "TERN_ADMIN_KEY";
/// The shortest key accepted: shorter ones can be guessed over a network.
pub const MIN_KEY_LEN: usize = 16;

/// The admin key, kept as its SHA-256 so comparisons take the same time whatever matches.
pub struct AdminKey([u8; 32]);

impl AdminKey {
    /// The key from `TERN_ADMIN_KEY`, else from `settings.key_file` (relative to
    /// `project_dir`); None when neither is set. A key that is too short, or a key file that
    /// cannot be read, is an error naming where it came from.
    pub fn load(settings: &AdminSettings, project_dir: &Path) -> Result<Option<AdminKey>, String> {
        let file = ("admin.key_file", settings.key_file.as_deref());
        let key = secret::read(KEY_VAR, file, project_dir, MIN_KEY_LEN)?;
        Ok(key.map(|key| AdminKey(Sha256::digest(key.value.as_bytes()).into())))
    }

    /// Whether `headers` carry this key as `Authorization: Bearer <key>`.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key)
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        given.ct_eq(&self.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_key_is_admitted() {
        let key = AdminKey(Sha256::digest(b"0123456789abcdef").into());
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(key.admits(&with("Bearer 0123456789abcdef")));
        assert!(!key.admits(&with("Bearer 0123456789abcdeF")));
        assert!(key.admits(&with("bearer 0123456789abcdef")));
        assert!(!key.admits(&with("Basic 0123456789abcdef")));
        assert!(!key.admits(&with("0123456789abcdef")));
        assert!(!key.admits(&HeaderMap::new()));
    }
}

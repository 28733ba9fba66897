//! Secrets (the admin key, the token secret) come from the environment or from a file the
//! YAML names, never from the YAML itself, and are never logged.

use std::path::Path;

/// A secret and where it came from (for error messages; never the secret itself).
pub struct Secret {
    /// The secret, trimmed.
    pub value: String,
    /// `TERN_...` or `field (path)`.
    pub from: String,
}

/// The secret in environment variable `var`, else in `file` (the setting `field`,
/// relative to `project_dir`); None when neither is set. A file that cannot be read is an
/// error naming it; one shorter than `min_len` characters is an error naming its source.
pub fn read(
    var: &str,
    (field, file): (&str, Option<&Path>),
    project_dir: &Path,
    min_len: usize,
) -> Result<Option<Secret>, String> {
    let secret = match std::env::var(var) {
        Ok(value) => Secret { value: value.trim().to_owned(), from: var.to_owned() },
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{var}: not valid UTF-8"));
        }
        Err(std::env::VarError::NotPresent) => match file {
            Some(file) => {
                let path = project_dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{field}: cannot read {}: {e}", path.display()))?;
                Secret {
                    value: text.trim().to_owned(),
                    from: format!("{field} ({})", path.display()),
                }
            }
            None => return Ok(None),
        },
    };
    if secret.value.chars().count() < min_len {
        return Err(format!(
            "{}: the secret must be at least {min_len} characters long",
            secret.from
        ));
    }
    Ok(Some(secret))
}

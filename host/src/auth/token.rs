//! Access tokens: JWTs whose claims say where the holder may subscribe and publish. The
//! host's secret (HS256, which also mints) comes from `TERN_AUTH_SECRET` or the file
//! `auth.secret_file` names, never from the YAML itself, and is never logged; `auth.keys`
//! adds keys picked by a token's `kid` (an old secret while rotating, RS256 or ES256
//! public keys of an identity provider).

use std::{path::Path, sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind,
    get_current_timestamp,
};
use serde::{Deserialize, Serialize};

use super::{ChannelPattern, Grant};
use crate::{
    channel_name::ChannelName,
    config::{secret, settings::AuthSettings},
};

/// The environment variable holding the secret.
pub const SECRET_VAR: &str = "TERN_AUTH_SECRET";
/// The shortest secret accepted, in characters: HS256 wants at least as many bytes as
/// its output.
const MIN_SECRET_LEN: usize = 32;
/// Most patterns a token may list per action: each is checked on every subscribe or publish.
pub const MAX_PATTERNS: usize = 256;
/// Longest lifetime of a token a function mints.
pub const MAX_MINTED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A token's claims.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch (required: checked by the validation, so a
    /// token without it is refused as such rather than as malformed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Who holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Channel patterns the holder may subscribe to.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Channel patterns the holder may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// What others see of the holder (a connection token's `info`, a subscription token's
    /// channel info): any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// Channels a connection is subscribed to server-side when it connects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The channel a subscription token is for (it makes the token a subscription token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// What a verified subscription token grants: the channel, with this info, until `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionGrant {
    /// The channel info others see (`chan_info`), as JSON text.
    pub info: Option<Arc<str>>,
    /// Its expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Longest `info` claim accepted, serialized: it travels with every join, leave and
/// publication of its holder.
pub const MAX_INFO_LEN: usize = 4096;

/// Why a token was refused or could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// This host has no secret.
    #[error("this host checks no tokens: it has no secret (set {SECRET_VAR} or auth.secret_file)")]
    NoSecret,
    /// Its `exp` has passed.
    #[error("the access token has expired")]
    Expired,
    /// Its `nbf` is in the future.
    #[error("the access token is not valid yet (nbf)")]
    NotYetValid,
    /// The signature does not match this host's secret.
    #[error("the access token's signature does not match (signed with another secret?)")]
    BadSignature,
    /// Not the algorithm of the key that checks it (`none`, HS256 against a public key...).
    #[error(
        "the access token is not signed with the algorithm of the key that checks it (HS256 for the host's secret, or its key's RS256 or ES256)"
    )]
    WrongAlgorithm,
    /// Its `kid` names no key of this host (or it names none and the host has several).
    #[error("the access token's `kid` names no key of this host ({0:?})")]
    UnknownKey(String),
    /// It has no `exp`.
    #[error("the access token has no `exp` claim: tokens must expire")]
    NoExpiry,
    /// A claim is not what tern expects.
    #[error("the access token is malformed or its claims are invalid: {0}")]
    BadClaims(String),
    /// Not a JWT at all.
    #[error("the access token is malformed (not a JWT)")]
    Malformed,
    /// A subscription token where a connection token is wanted, or one for another
    /// channel or user.
    #[error("{0}")]
    Mismatch(String),
}

/// A key that checks tokens: the algorithm it takes, and the `kid` that picks it.
struct VerifyKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks access tokens with the host's keys, and mints them with its secret.
pub struct TokenAuthority {
    /// The secret that mints (HS256), and the `kid` its tokens carry.
    mint: Option<(EncodingKey, Option<String>)>,
    /// Every key that checks: the secret first, then `auth.keys`.
    verify: Vec<VerifyKey>,
}

impl TokenAuthority {
    /// An authority without a secret: every token is refused.
    pub fn none() -> Arc<Self> {
        Arc::new(Self { mint: None, verify: Vec::new() })
    }

    /// An authority signing with `secret`.
    pub fn with_secret(secret: &[u8]) -> Arc<Self> {
        Arc::new(Self::of_secret(secret, None))
    }

    fn of_secret(secret: &[u8], kid: Option<String>) -> Self {
        let verify = VerifyKey {
            kid: kid.clone(),
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        };
        Self { mint: Some((EncodingKey::from_secret(secret), kid)), verify: vec![verify] }
    }

    /// The secret from `TERN_AUTH_SECRET`, else from `settings.secret_file` (relative to
    /// `project_dir`), and the keys of `settings.keys`; no key when none is set. A short
    /// secret, an unreadable file, a key that is not what its algorithm wants or a `kid`
    /// named twice is an error naming where it came from.
    pub fn load(settings: &AuthSettings, project_dir: &Path) -> Result<Arc<Self>, String> {
        let file = ("auth.secret_file", settings.secret_file.as_deref());
        let mut authority = match secret::read(SECRET_VAR, file, project_dir, MIN_SECRET_LEN)? {
            Some(secret) => Self::of_secret(secret.value.as_bytes(), settings.kid.clone()),
            None => Self { mint: None, verify: Vec::new() },
        };
        for (i, key) in settings.keys.iter().enumerate() {
            let field = format!("auth.keys[{i}]");
            if authority.verify.iter().any(|k| k.kid.as_deref() == Some(key.kid.as_str())) {
                return Err(format!("{field}.kid: `{}` names another key too", key.kid));
            }
            let path = project_dir.join(&key.file);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("{field}.file: cannot read {}: {e}", path.display()))?;
            let (algorithm, decoding) = match key.algorithm.as_str() {
                "HS256" => {
                    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                    if text.chars().count() < MIN_SECRET_LEN {
                        return Err(format!(
                            "{field}.file ({}): an HS256 secret must be at least {MIN_SECRET_LEN} characters",
                            path.display()
                        ));
                    }
                    (Algorithm::HS256, DecodingKey::from_secret(text.as_bytes()))
                }
                "RS256" => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem(&bytes).map_err(|e| {
                        format!(
                            "{field}.file ({}): not an RSA public key in PEM: {e}",
                            path.display()
                        )
                    })?,
                ),
                "ES256" => (
                    Algorithm::ES256,
                    DecodingKey::from_ec_pem(&bytes).map_err(|e| {
                        format!(
                            "{field}.file ({}): not a P-256 public key in PEM: {e}",
                            path.display()
                        )
                    })?,
                ),
                other => {
                    return Err(format!(
                        "{field}.algorithm: `{other}` is not one tern checks (HS256, RS256, ES256)"
                    ));
                }
            };
            authority.verify.push(VerifyKey {
                kid: Some(key.kid.clone()),
                algorithm,
                key: decoding,
            });
        }
        Ok(Arc::new(authority))
    }

    /// Whether this host has a secret (it can mint tokens).
    pub fn has_secret(&self) -> bool {
        self.mint.is_some()
    }

    /// The key that checks `token`: the one its `kid` names, else (no `kid`) the secret, or
    /// the only key there is; and its algorithm must be the token's, so a public key can
    /// never be taken for an HMAC secret.
    fn key_for(&self, token: &str) -> Result<&VerifyKey, TokenError> {
        if self.verify.is_empty() {
            return Err(TokenError::NoSecret);
        }
        let header = header_of(token);
        let key = match header.as_ref().and_then(|h| h.kid.as_deref()) {
            Some(kid) => self
                .verify
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| TokenError::UnknownKey(kid.chars().take(64).collect()))?,
            None if self.mint.is_some() => &self.verify[0],
            None if self.verify.len() == 1 => &self.verify[0],
            None => return Err(TokenError::UnknownKey(String::new())),
        };
        match header {
            Some(h) if h.alg != alg_name(key.algorithm) => Err(TokenError::WrongAlgorithm),
            _ => Ok(key),
        }
    }

    /// What `token` grants, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let claims = self.decode(token)?;
        if claims.channel.is_some() {
            return Err(TokenError::Mismatch(
                "a subscription token (it has a `channel` claim) cannot open a connection".into(),
            ));
        }
        grant_of(claims)
    }

    /// What the token of a signed raw-bridge URL grants: as [`TokenAuthority::verify`],
    /// and a `channel` claim (which a function's URL has) becomes the one channel it opens.
    pub fn verify_url(&self, token: &str) -> Result<Grant, TokenError> {
        let claims = self.decode(token)?;
        let channel = match claims.channel.as_deref() {
            None => None,
            Some(c) => Some(
                ChannelName::parse(c)
                    .map_err(|e| TokenError::BadClaims(format!("`channel`: {e}")))?,
            ),
        };
        Ok(Grant { url_channel: channel, ..grant_of(claims)? })
    }

    /// What a subscription token for `channel`, held by a connection of `user`, grants.
    pub fn verify_subscription(
        &self,
        token: &str,
        user: &str,
        channel: &str,
    ) -> Result<SubscriptionGrant, TokenError> {
        let claims = self.decode(token)?;
        match claims.channel.as_deref() {
            Some(c) if c == channel => {}
            Some(c) => {
                return Err(TokenError::Mismatch(format!(
                    "the subscription token is for channel `{c}`, not `{channel}`"
                )));
            }
            None => {
                return Err(TokenError::Mismatch(
                    "not a subscription token: it has no `channel` claim".into(),
                ));
            }
        }
        if claims.sub.as_deref().unwrap_or_default() != user {
            return Err(TokenError::Mismatch(
                "the subscription token is for another user (`sub`)".into(),
            ));
        }
        Ok(SubscriptionGrant {
            info: info_of(claims.info)?,
            expires_at: claims.exp.unwrap_or_default(),
        })
    }

    /// The claims of a token signed by this host's secret, checked for algorithm, expiry
    /// and shape.
    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let VerifyKey { algorithm, key, .. } = self.key_for(token)?;
        let mut validation = Validation::new(*algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        // tern has no audience of its own: a token from an identity provider naming one
        // is judged on its signature, expiry and channel claims.
        validation.validate_aud = false;
        // tern's clock decides: a token minted elsewhere with a skewed clock is the
        // minter's problem, and "expired" must mean expired.
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e
            .into_kind()
        {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::WrongAlgorithm
            }
            ErrorKind::MissingRequiredClaim(_) => TokenError::NoExpiry,
            ErrorKind::Json(e) => TokenError::BadClaims(format!("not JSON as expected ({e})")),
            ErrorKind::InvalidClaimFormat(c) => TokenError::BadClaims(c),
            _ => TokenError::Malformed,
        })?;
        Ok(data.claims)
    }

    /// A token granting `grant` for `ttl` from now.
    pub fn mint(&self, grant: &Grant, ttl: Duration) -> Result<String, TokenError> {
        let (key, kid) = self.mint.as_ref().ok_or(TokenError::NoSecret)?;
        let list = |ps: &[ChannelPattern]| ps.iter().map(|p| p.as_str().to_owned()).collect();
        let claims = Claims {
            exp: Some(get_current_timestamp().saturating_add(ttl.as_secs())),
            nbf: None,
            sub: grant.user.as_deref().map(str::to_owned),
            subscribe: list(&grant.subscribe),
            publish: list(&grant.publish),
            channel: grant.url_channel.as_ref().map(ToString::to_string),
            ..Claims::default()
        };
        let header = Header { kid: kid.clone(), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| TokenError::BadClaims(e.to_string()))
    }
}

/// What a token's header says of its signature.
#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The token's header, or None when it is too broken to say (then the decoder reports it
/// as malformed). jsonwebtoken cannot parse a header naming an algorithm it does not know,
/// such as `none`, and would report it as malformed JSON: read it here to say what is wrong.
fn header_of(token: &str) -> Option<TokenHeader> {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice(&json).ok()
}

fn alg_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "HS256",
    }
}

/// The grant of verified claims; a pattern that is not a channel name refuses the token.
fn grant_of(claims: Claims) -> Result<Grant, TokenError> {
    let patterns = |field: &str, list: Vec<String>| {
        if list.len() > MAX_PATTERNS {
            return Err(TokenError::BadClaims(format!(
                "`{field}` lists {} patterns (at most {MAX_PATTERNS})",
                list.len()
            )));
        }
        list.iter()
            .enumerate()
            .map(|(i, p)| {
                ChannelPattern::parse(p)
                    .map_err(|e| TokenError::BadClaims(format!("`{field}[{i}]`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    if claims.channels.len() > MAX_PATTERNS {
        let n = claims.channels.len();
        return Err(TokenError::BadClaims(format!(
            "`channels` lists {n} (at most {MAX_PATTERNS})"
        )));
    }
    let channels = claims
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            ChannelName::parse(c)
                .map_err(|e| TokenError::BadClaims(format!("`channels[{i}]`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Grant {
        user: claims.sub.map(Arc::from),
        subscribe: patterns("subscribe", claims.subscribe)?,
        publish: patterns("publish", claims.publish)?,
        info: info_of(claims.info)?,
        channels,
        expires_at: claims.exp,
        ..Grant::default()
    })
}

/// The `info` claim as JSON text, refused past [`MAX_INFO_LEN`].
fn info_of(info: Option<serde_json::Value>) -> Result<Option<Arc<str>>, TokenError> {
    let Some(info) = info else { return Ok(None) };
    let text = info.to_string();
    if text.len() > MAX_INFO_LEN {
        return Err(TokenError::BadClaims(format!(
            "`info` is {} bytes of JSON (at most {MAX_INFO_LEN})",
            text.len()
        )));
    }
    Ok(Some(Arc::from(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn grant() -> Grant {
        Grant {
            user: Some("ada".into()),
            subscribe: vec![ChannelPattern::parse("chat").unwrap()],
            publish: vec![ChannelPattern::Any],
            ..Grant::default()
        }
    }

    #[test]
    fn a_minted_token_verifies_to_its_grant() {
        let authority = TokenAuthority::with_secret(SECRET);
        let token = authority.mint(&grant(), Duration::from_secs(60)).unwrap();
        let verified = authority.verify(&token).unwrap();
        assert!(verified.expires_at.is_some());
        assert_eq!(verified, Grant { expires_at: verified.expires_at, ..grant() });
    }

    #[test]
    fn tokens_of_another_secret_expired_or_unsigned_are_refused() {
        let ours = TokenAuthority::with_secret(SECRET);
        let theirs = TokenAuthority::with_secret(b"another secret, also 32 bytes long!!");
        let token = theirs.mint(&grant(), Duration::from_secs(60)).unwrap();
        assert_eq!(ours.verify(&token), Err(TokenError::BadSignature));
        let expired = Claims { exp: Some(get_current_timestamp() - 10), ..Claims::default() };
        let key = EncodingKey::from_secret(SECRET);
        let token = jsonwebtoken::encode(&Header::default(), &expired, &key).unwrap();
        assert_eq!(ours.verify(&token), Err(TokenError::Expired));
        assert_eq!(ours.verify("not.a.jwt"), Err(TokenError::Malformed));
        let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTl9.";
        assert_eq!(ours.verify(unsigned), Err(TokenError::WrongAlgorithm));
        let no_exp = Claims { sub: Some("x".into()), ..Claims::default() };
        let token = jsonwebtoken::encode(&Header::default(), &no_exp, &key).unwrap();
        assert_eq!(ours.verify(&token), Err(TokenError::NoExpiry));
        assert_eq!(TokenAuthority::none().verify(&token), Err(TokenError::NoSecret));
    }

    /// An authority with the secret (kid `now`), an old secret (kid `old`), and RS256 and
    /// ES256 public keys (kids `rsa`, `ec`), read from files as `tern.yaml` names them.
    fn rotating() -> Arc<TokenAuthority> {
        let dir = std::env::temp_dir().join(format!("tern-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), SECRET).unwrap();
        std::fs::write(dir.join("old"), "the old secret, still 32 bytes long!").unwrap();
        std::fs::write(dir.join("rsa.pem"), include_str!("testdata/rsa.pub.pem")).unwrap();
        std::fs::write(dir.join("ec.pem"), include_str!("testdata/ec.pub.pem")).unwrap();
        let key =
            |kid: &str, algorithm: &str, file: &str| crate::config::settings::VerifyKeySettings {
                kid: kid.into(),
                algorithm: algorithm.into(),
                file: file.into(),
            };
        let settings = AuthSettings {
            secret_file: Some("secret".into()),
            kid: Some("now".into()),
            keys: vec![
                key("old", "HS256", "old"),
                key("rsa", "RS256", "rsa.pem"),
                key("ec", "ES256", "ec.pem"),
            ],
        };
        // TERN_AUTH_SECRET would win over the file: these tests do not set it.
        TokenAuthority::load(&settings, &dir).unwrap()
    }

    fn signed(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
        let claims = Claims {
            exp: Some(get_current_timestamp() + 60),
            sub: Some("ada".into()),
            ..Claims::default()
        };
        let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[test]
    fn tokens_are_checked_with_the_key_their_kid_names() {
        let authority = rotating();
        let minted = authority.mint(&grant(), Duration::from_secs(60)).unwrap();
        assert_eq!(header_of(&minted).unwrap().kid.as_deref(), Some("now"));
        assert!(authority.verify(&minted).is_ok());
        let old = EncodingKey::from_secret(b"the old secret, still 32 bytes long!");
        assert!(authority.verify(&signed(Algorithm::HS256, Some("old"), &old)).is_ok());
        assert_eq!(
            authority.verify(&signed(Algorithm::HS256, None, &old)),
            Err(TokenError::BadSignature),
            "no kid: the current secret checks it"
        );
        let rsa = EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa.key.pem")).unwrap();
        let ec = EncodingKey::from_ec_pem(include_bytes!("testdata/ec.key.pem")).unwrap();
        let user = |t: &str| authority.verify(t).map(|g| g.user);
        assert_eq!(user(&signed(Algorithm::RS256, Some("rsa"), &rsa)), Ok(Some("ada".into())));
        assert_eq!(user(&signed(Algorithm::ES256, Some("ec"), &ec)), Ok(Some("ada".into())));
        assert_eq!(
            authority.verify(&signed(Algorithm::RS256, Some("ec"), &rsa)),
            Err(TokenError::WrongAlgorithm),
            "an RS256 token naming the EC key"
        );
        assert_eq!(
            authority.verify(&signed(Algorithm::RS256, Some("gone"), &rsa)),
            Err(TokenError::UnknownKey("gone".into()))
        );
        // The classic confusion: HS256 "signed" with the RSA public key as the secret.
        let public_as_secret = EncodingKey::from_secret(include_bytes!("testdata/rsa.pub.pem"));
        assert_eq!(
            authority.verify(&signed(Algorithm::HS256, Some("rsa"), &public_as_secret)),
            Err(TokenError::WrongAlgorithm)
        );
        let other_ec = EncodingKey::from_ec_pem(include_bytes!("testdata/ec.key.pem")).unwrap();
        let forged = signed(Algorithm::ES256, Some("rsa"), &other_ec);
        assert_eq!(authority.verify(&forged), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn bad_key_settings_name_the_key() {
        let dir = std::env::temp_dir().join(format!("tern-token-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pem"), "not a key").unwrap();
        let settings = |algorithm: &str| AuthSettings {
            keys: vec![crate::config::settings::VerifyKeySettings {
                kid: "k".into(),
                algorithm: algorithm.into(),
                file: "junk.pem".into(),
            }],
            ..AuthSettings::default()
        };
        let err = TokenAuthority::load(&settings("RS256"), &dir).err().unwrap();
        assert!(err.starts_with("auth.keys[0].file"), "{err}");
        let err = TokenAuthority::load(&settings("none"), &dir).err().unwrap();
        assert!(err.contains("auth.keys[0].algorithm: `none`"), "{err}");
    }

    #[test]
    fn a_bad_pattern_refuses_the_token() {
        let claims = Claims {
            exp: Some(get_current_timestamp() + 60),
            subscribe: vec!["ok".into(), "bad//name".into()],
            ..Claims::default()
        };
        let key = EncodingKey::from_secret(SECRET);
        let token = jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap();
        let err = TokenAuthority::with_secret(SECRET).verify(&token).unwrap_err();
        assert!(err.to_string().contains("`subscribe[1]`"), "{err}");
    }
}

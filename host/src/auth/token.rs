//! Access tokens: HS256 JWTs whose claims say where the holder may subscribe and publish.
//! The secret comes from `TERN_AUTH_SECRET` or the file `auth.secret_file` names, never
//! from the YAML itself, and is never logged.

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
    /// Not HS256 (`none`, RS256...).
    #[error("the access token must be signed with HS256")]
    WrongAlgorithm,
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

/// Checks and mints access tokens with the host's secret.
pub struct TokenAuthority {
    keys: Option<(EncodingKey, DecodingKey)>,
}

impl TokenAuthority {
    /// An authority without a secret: every token is refused.
    pub fn none() -> Arc<Self> {
        Arc::new(Self { keys: None })
    }

    /// An authority signing with `secret`.
    pub fn with_secret(secret: &[u8]) -> Arc<Self> {
        let keys = (EncodingKey::from_secret(secret), DecodingKey::from_secret(secret));
        Arc::new(Self { keys: Some(keys) })
    }

    /// The secret from `TERN_AUTH_SECRET`, else from `settings.secret_file` (relative to
    /// `project_dir`); no secret when neither is set. A short secret or an unreadable file
    /// is an error naming where it came from.
    pub fn load(settings: &AuthSettings, project_dir: &Path) -> Result<Arc<Self>, String> {
        let file = ("auth.secret_file", settings.secret_file.as_deref());
        Ok(match secret::read(SECRET_VAR, file, project_dir, MIN_SECRET_LEN)? {
            Some(secret) => Self::with_secret(secret.value.as_bytes()),
            None => Self::none(),
        })
    }

    /// Whether this host has a secret.
    pub fn has_secret(&self) -> bool {
        self.keys.is_some()
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
        let (_, key) = self.keys.as_ref().ok_or(TokenError::NoSecret)?;
        if !signed_with_hs256(token) {
            return Err(TokenError::WrongAlgorithm);
        }
        let mut validation = Validation::new(Algorithm::HS256);
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
        let (key, _) = self.keys.as_ref().ok_or(TokenError::NoSecret)?;
        let list = |ps: &[ChannelPattern]| ps.iter().map(|p| p.as_str().to_owned()).collect();
        let claims = Claims {
            exp: Some(get_current_timestamp().saturating_add(ttl.as_secs())),
            nbf: None,
            sub: grant.user.as_deref().map(str::to_owned),
            subscribe: list(&grant.subscribe),
            publish: list(&grant.publish),
            ..Claims::default()
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| TokenError::BadClaims(e.to_string()))
    }
}

/// Whether the token's header names HS256, or is too broken to say (then the decoder
/// reports it as malformed). jsonwebtoken cannot parse a header naming an algorithm it does
/// not know, such as `none`, and would report it as malformed JSON: say what is wrong.
fn signed_with_hs256(token: &str) -> bool {
    #[derive(Deserialize)]
    struct Alg {
        alg: String,
    }
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return true;
    };
    serde_json::from_slice::<Alg>(&json).map_or(true, |h| h.alg == "HS256")
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

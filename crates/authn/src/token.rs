//! Helpers shared by the authenticators: token hygiene, digests, base64url, NumericDate.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{ClaimProblem, InvalidToken, MalformedToken};

/// The longest token accepted, in bytes (16 KiB).
///
/// Projected ServiceAccount tokens are about 1 KiB; the limit bounds the work (base64, JSON,
/// hashing, a TokenReview body) an unauthenticated caller can ask for.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The token as text: surrounding ASCII whitespace (a trailing newline in a file) removed,
/// length and character set checked. The error never quotes the token.
pub(crate) fn token_str(token: &[u8]) -> Result<&str, InvalidToken> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(InvalidToken::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let token = token.trim_ascii();
    if token.is_empty() {
        return Err(InvalidToken::Empty);
    }
    if let Some(pos) = token.iter().position(|b| !b.is_ascii_graphic()) {
        return Err(InvalidToken::Malformed {
            reason: MalformedToken::NotPrintable { byte: pos },
        });
    }
    // Printable ASCII is UTF-8: this cannot fail, but is no reason to panic either.
    core::str::from_utf8(token).map_err(|e| InvalidToken::Malformed {
        reason: MalformedToken::NotPrintable {
            byte: e.valid_up_to(),
        },
    })
}

/// SHA-256 of the token: the only form in which tokens are stored.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

/// SHA-256 of `bytes`.
pub(crate) fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub(crate) fn b64_decode(part: &str, what: &'static str) -> Result<Vec<u8>, InvalidToken> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InvalidToken::Malformed {
            reason: MalformedToken::NotBase64 { part: what },
        })
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a base64url segment holding a JSON object.
pub(crate) fn json_object(
    part: &str,
    what: &'static str,
) -> Result<Map<String, Value>, InvalidToken> {
    let bytes = b64_decode(part, what)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(InvalidToken::Malformed {
            reason: MalformedToken::NotJsonObject { part: what },
        }),
    }
}

/// A JWT NumericDate (seconds since the epoch, possibly fractional; fractions are dropped).
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<OffsetDateTime>, InvalidToken> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let invalid = |reason: ClaimProblem| InvalidToken::Claim { name, reason };
    let secs = match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => {
                #[allow(clippy::cast_possible_truncation)] // range checked above
                let i = f.floor() as i64;
                i
            }
            _ => return Err(invalid(ClaimProblem::OutOfRange)),
        },
        _ => return Err(invalid(ClaimProblem::NotNumericDate)),
    };
    OffsetDateTime::from_unix_timestamp(secs)
        .map(Some)
        .map_err(|_| invalid(ClaimProblem::OutOfRange))
}

/// The `exp` of a JWT, read without verifying anything: only ever used to shorten a cache
/// lifetime, never to accept a token.
pub(crate) fn unverified_exp(token: &str) -> Option<OffsetDateTime> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let claims = json_object(payload, "payload").ok()?;
    numeric_date(&claims, "exp").ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_checks_tokens() {
        assert_eq!(token_str(b" abc.def\n"), Ok("abc.def"));
        assert_eq!(token_str(b" \n"), Err(InvalidToken::Empty));
        assert!(matches!(
            token_str(b"a b"),
            Err(InvalidToken::Malformed { .. })
        ));
        let big = vec![b'a'; MAX_TOKEN_LEN + 1];
        assert_eq!(
            token_str(&big),
            Err(InvalidToken::TooLarge {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            })
        );
    }

    #[test]
    fn reads_numeric_dates() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"a": 10, "b": 10.9, "c": "10", "d": 1e300}"#).unwrap();
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert_eq!(numeric_date(&claims, "a"), Ok(Some(t(10))));
        assert_eq!(numeric_date(&claims, "b"), Ok(Some(t(10))));
        assert!(numeric_date(&claims, "c").is_err());
        assert!(numeric_date(&claims, "d").is_err());
        assert_eq!(numeric_date(&claims, "e"), Ok(None));
    }

    #[test]
    fn reads_exp_without_verifying() {
        let payload = b64_encode(br#"{"exp": 1700000000}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(
            unverified_exp(&token),
            Some(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap())
        );
        assert_eq!(unverified_exp("opaque-token"), None);
    }
}

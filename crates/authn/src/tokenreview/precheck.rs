//! What a token says about itself that is enough to refuse it without asking the API server.
//!
//! Only ever a filter: nothing here accepts a token, and a token this cannot read is left to
//! the TokenReview.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::token::{json_object, numeric_date};
use crate::{InvalidToken, MalformedToken};

/// Why a token was refused locally (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LocalRefusal {
    /// Its `aud` lacks every audience the review would ask for.
    Audience,
    /// Its `exp` is past, beyond the clock-skew allowance.
    Expired,
    /// It is not a JWT, and ServiceAccount tokens are.
    NotJwt,
}

impl LocalRefusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Audience => "audience",
            Self::Expired => "expired",
            Self::NotJwt => "not_jwt",
        }
    }
}

/// The checks, and what they need to know.
#[derive(Clone, Debug)]
pub(crate) struct Precheck<'a> {
    /// The audiences the review asks for; `None` leaves `aud` to the API server.
    pub(crate) audiences: Option<&'a [String]>,
    pub(crate) skew: Duration,
}

impl Precheck<'_> {
    /// `Err` when `token` can be refused without a review: not a JWT (three dot-separated
    /// parts, a JSON header and payload), expired, or for other audiences.
    pub(crate) fn check(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(), (InvalidToken, LocalRefusal)> {
        let not_jwt = || {
            (
                InvalidToken::Malformed {
                    reason: MalformedToken::NotJwt,
                },
                LocalRefusal::NotJwt,
            )
        };
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(not_jwt());
        };
        json_object(header, "header").map_err(|_| not_jwt())?;
        let claims = json_object(payload, "payload").map_err(|_| not_jwt())?;

        if let Ok(Some(exp)) = numeric_date(&claims, "exp")
            && now >= exp + self.skew
        {
            return Err((
                InvalidToken::Expired {
                    exp,
                    now,
                    skew: self.skew,
                },
                LocalRefusal::Expired,
            ));
        }

        if let Some(expected) = self.audiences.filter(|a| !a.is_empty()) {
            let found: Option<Vec<String>> = match claims.get("aud") {
                Some(Value::String(aud)) => Some(vec![aud.clone()]),
                Some(Value::Array(auds)) => auds
                    .iter()
                    .map(|aud| aud.as_str().map(str::to_owned))
                    .collect(),
                _ => None,
            };
            if let Some(found) = found
                && !found.iter().any(|aud| expected.contains(aud))
            {
                return Err((
                    InvalidToken::Audience {
                        expected: expected.join(","),
                        found,
                    },
                    LocalRefusal::Audience,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::token::b64_encode;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn jwt(claims: &Value) -> String {
        format!(
            "{}.{}.c2ln",
            b64_encode(br#"{"alg":"RS256"}"#),
            b64_encode(claims.to_string().as_bytes())
        )
    }

    fn check(token: &str, fallback: bool) -> Result<(), LocalRefusal> {
        let audiences = ["identity.l5d.io".to_owned()];
        Precheck {
            audiences: (!fallback).then_some(&audiences[..]),
            skew: Duration::from_secs(20),
        }
        .check(token, NOW)
        .map_err(|(_, why)| why)
    }

    #[test]
    fn refuses_only_what_the_token_says_for_itself() {
        let exp = |at: OffsetDateTime| at.unix_timestamp();
        let good = json!({"aud": ["identity.l5d.io"], "exp": exp(NOW) + 60});
        assert_eq!(check(&jwt(&good), false), Ok(()));
        // Nothing to go on: left to the API server.
        assert_eq!(check(&jwt(&json!({})), false), Ok(()));
        assert_eq!(check(&jwt(&json!({"aud": 5, "exp": "x"})), false), Ok(()));

        assert_eq!(check("opaque-token", false), Err(LocalRefusal::NotJwt));
        assert_eq!(check("a.b.c.d", false), Err(LocalRefusal::NotJwt));
        assert_eq!(
            check("e30.bm90IGpzb24.c2ln", false),
            Err(LocalRefusal::NotJwt)
        );

        // Expired beyond the allowance.
        let at = |secs: i64| jwt(&json!({"aud": "identity.l5d.io", "exp": exp(NOW) + secs}));
        assert_eq!(check(&at(-19), false), Ok(()));
        assert_eq!(check(&at(-20), false), Err(LocalRefusal::Expired));

        // Another audience, unless the review asks for none.
        let default_audience = jwt(&json!({"aud": ["https://kubernetes.default.svc"]}));
        assert_eq!(check(&default_audience, false), Err(LocalRefusal::Audience));
        assert_eq!(check(&default_audience, true), Ok(()));
    }
}

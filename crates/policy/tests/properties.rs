//! Property tests: round trips and validity-window invariants.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_policy::{
    CredentialRole, IssuancePolicy, MAX_GO_DURATION, Mesh, Namespace, ServiceAccount, TrustDomain,
    ValidityBound, format_go_duration, parse_go_duration,
};
use proptest::prelude::*;
use time::OffsetDateTime;

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
}

fn subdomain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join("."))
}

fn mesh() -> impl Strategy<Value = Mesh> {
    (subdomain(), label())
        .prop_map(|(td, ns)| Mesh::new(TrustDomain::new(td).unwrap(), Namespace::new(ns).unwrap()))
}

fn service_account() -> impl Strategy<Value = ServiceAccount> {
    (label(), subdomain()).prop_map(|(ns, name)| ServiceAccount::new(&ns, &name).unwrap())
}

proptest! {
    #[test]
    fn identity_round_trip(mesh in mesh(), sa in service_account()) {
        let id = mesh.identity(&sa).unwrap();
        prop_assert_eq!(mesh.parse_identity(id.as_str()).unwrap(), sa);
    }

    #[test]
    fn spiffe_round_trip(mesh in mesh(), sa in service_account()) {
        let id = mesh.spiffe_id(&sa);
        prop_assert_eq!(mesh.parse_spiffe_id(id.as_str()).unwrap(), sa);
    }

    #[test]
    fn username_round_trip(sa in service_account()) {
        prop_assert_eq!(ServiceAccount::from_username(&sa.username()).unwrap(), sa);
    }

    #[test]
    fn duration_round_trip(nanos in 0..=MAX_GO_DURATION.as_nanos() as u64) {
        let d = Duration::from_nanos(nanos);
        let text = format_go_duration(d);
        prop_assert_eq!(parse_go_duration(&text).unwrap(), d, "{}", text);
    }

    #[test]
    fn whatever_parses_formats_back_to_the_same_duration(s in "\\PC{0,24}") {
        if let Ok(d) = parse_go_duration(&s) {
            prop_assert!(d <= MAX_GO_DURATION, "{}", s);
            prop_assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d), "{}", s);
        }
    }

    #[test]
    fn go_syntax_parses_to_its_sum(h in 0u64..1000, m in 0u64..1000, ms in 0u64..1000) {
        let text = format!("{h}h{m}m{ms}ms");
        let want = Duration::from_secs(h * 3600 + m * 60) + Duration::from_millis(ms);
        prop_assert_eq!(parse_go_duration(&text), Ok(want));
    }

    #[test]
    fn validity_window_invariants(
        now_s in 1_700_000_000i64..1_900_000_000,
        lifetime_s in 1u64..=7 * 86_400,
        skew_s in 0u64..=3_600,
        bounds in prop::collection::vec((-400_000_000i64..10, -10i64..400_000_000), 0..4),
    ) {
        let now = OffsetDateTime::from_unix_timestamp(now_s).unwrap();
        let mut policy = IssuancePolicy::default();
        policy.lifetime = Duration::from_secs(lifetime_s);
        policy.clock_skew = Duration::from_secs(skew_s);
        policy.validate().unwrap();
        let bounds: Vec<_> = bounds
            .iter()
            .enumerate()
            .map(|(i, (before, after))| {
                ValidityBound::new(
                    CredentialRole::Issuer { position: i },
                    now + time::Duration::seconds(*before),
                    now + time::Duration::seconds(*after),
                )
            })
            .collect();
        let all_valid = bounds.iter().all(|b| b.not_before <= now && now < b.not_after);
        match policy.validity_window(now, &bounds) {
            Ok(w) => {
                prop_assert!(all_valid);
                prop_assert!(w.not_before <= now && now <= w.not_after);
                for b in &bounds {
                    prop_assert!(w.not_after <= b.not_after);
                }
                let len = w.not_after - w.not_before;
                prop_assert!(len <= policy.lifetime + 2 * policy.clock_skew);
                prop_assert_eq!(w.not_before, now - policy.clock_skew);
            }
            Err(_) => prop_assert!(!all_valid, "refused a window with every bound valid"),
        }
    }
}

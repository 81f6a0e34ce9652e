//! Property tests: refresh times stay inside the validity, jitter stays in its window, backoff
//! stays under its caps and before expiry, and issuer renewal stays inside the validity.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_rotation::{Backoff, Error, IssuerSchedule, RefreshPolicy};
use proptest::prelude::*;
use time::OffsetDateTime;

const SECOND: i128 = 1_000_000_000;

fn instant(nanos: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap()
}

/// A NotBefore between 2023 and 2033, with nanoseconds.
fn not_before() -> impl Strategy<Value = i128> {
    1_700_000_000 * SECOND..2_000_000_000 * SECOND
}

/// A lifetime from one second to 400 days, with nanoseconds.
fn lifetime() -> impl Strategy<Value = i128> {
    prop_oneof![SECOND..120 * SECOND, SECOND..400 * 86_400 * SECOND]
}

/// A valid refresh policy: any fraction, any jitter that keeps fraction ± jitter inside (0, 1),
/// and delays from zero to two hours.
fn policy() -> impl Strategy<Value = RefreshPolicy> {
    (0.01f64..0.99, 0.0f64..1.0, 0u64..7_200_000, 0u64..7_200_000).prop_map(
        |(fraction, share, min_delay_ms, margin_ms)| {
            let room = fraction.min(1.0 - fraction);
            let mut policy = RefreshPolicy::new(fraction, share * room * 0.999);
            policy.min_delay = Duration::from_millis(min_delay_ms);
            policy.safety_margin = Duration::from_millis(margin_ms);
            policy
        },
    )
}

proptest! {
    // Cheap cases, so many of them; failures print their minimal input instead of writing
    // regression files.
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every valid input gets an instant strictly inside (not_before, not_after), not before now;
    /// a now at or past not_after is `Expired`.
    #[test]
    fn refresh_time_is_inside_the_validity(
        policy in policy(),
        start in not_before(),
        life in lifetime(),
        // now from one lifetime before NotBefore to a second after NotAfter.
        now_share in -1.0f64..1.0,
        now_extra in -SECOND..SECOND,
        u in 0.0f64..1.0,
    ) {
        policy.validate().unwrap();
        let end = start + life;
        let now = start + (now_share * life as f64) as i128 + now_extra;
        let now = if now_share > 0.99 { end + now_extra.abs() } else { now };
        let (nb, na, now_t) = (instant(start), instant(end), instant(now));
        match policy.refresh_at(nb, na, now_t, &mut || u) {
            Ok(at) => {
                prop_assert!(now < end);
                prop_assert!(nb < at && at < na, "{at} outside ({nb}, {na})");
                prop_assert!(at >= now_t, "{at} before now {now_t}");
            }
            Err(Error::Expired { .. }) => prop_assert!(now >= end),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    /// At issuance, with the default policy and lifetimes where no clamp binds, the refresh time
    /// is within fraction ± jitter of the lifetime, and exactly where the jitter value puts it.
    #[test]
    fn jitter_is_within_bounds(
        start in not_before(),
        life in 10 * 60 * SECOND..400 * 86_400 * SECOND,
        u in 0.0f64..1.0,
    ) {
        let policy = RefreshPolicy::default();
        let nb = instant(start);
        let at = policy.refresh_at(nb, instant(start + life), nb, &mut || u).unwrap();
        let offset = (at - nb).whole_nanoseconds();
        let life_f = life as f64;
        let low = ((policy.fraction - policy.jitter) * life_f).floor() as i128;
        let high = ((policy.fraction + policy.jitter) * life_f).ceil() as i128;
        prop_assert!(low <= offset && offset <= high, "{offset} outside [{low}, {high}]");
        let expected = ((policy.fraction + policy.jitter * (2.0 * u - 1.0)) * life_f).round();
        prop_assert_eq!(offset, expected as i128);
    }

    /// Backoff never exceeds its cap, grows at most as initial · 2^attempt, never goes below
    /// min(floor, ceiling), and while a certificate is valid always retries before it expires.
    #[test]
    fn backoff_stays_under_its_caps_and_before_expiry(
        failures in 0usize..80,
        now in not_before(),
        remaining in prop::option::of(prop_oneof![1i128..SECOND, 1i128..30 * 86_400 * SECOND]),
        draws in prop::collection::vec(0.0f64..1.0, 80),
    ) {
        let mut backoff = Backoff::default();
        let now_t = instant(now);
        let not_after = remaining.map(|r| instant(now + r));
        let mut draws = draws.into_iter();
        for attempt in 0..=failures {
            let u = draws.next().unwrap_or(0.5);
            let ceiling = backoff.ceiling(now_t, not_after);
            let delay = backoff.next_delay(now_t, not_after, &mut || u);
            let policy = backoff.policy();
            prop_assert!(delay <= ceiling);
            prop_assert!(delay >= policy.floor.min(ceiling));
            let exponential = policy.initial.as_nanos() << attempt.min(100);
            prop_assert!(delay.as_nanos() <= exponential);
            match remaining {
                None => prop_assert!(delay <= policy.cap_without_cert),
                Some(r) => {
                    prop_assert!(delay <= policy.cap_with_cert);
                    prop_assert!(delay.as_nanos() <= r.unsigned_abs() / 4);
                    let retry = now_t + delay;
                    prop_assert!(retry < not_after.unwrap(), "retry {retry} not before expiry");
                }
            }
        }
    }

    /// Issuer renewal lies in [not_before, not_after) whatever the overrides.
    #[test]
    fn issuer_renewal_is_inside_the_validity(
        start in not_before(),
        life in lifetime(),
        renew_before_s in prop::option::of(0u64..1_000_000),
        percent in prop::option::of(0u8..=120),
    ) {
        let mut schedule = IssuerSchedule::default();
        schedule.renew_before = renew_before_s.map(Duration::from_secs);
        schedule.renew_before_percentage = percent;
        let (nb, na) = (instant(start), instant(start + life));
        let at = schedule.renew_at(nb, na).unwrap();
        prop_assert!(nb <= at && at < na);
        prop_assert!(schedule.needs_renewal(at, nb, na));
    }
}

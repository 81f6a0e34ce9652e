//! No thundering herd: clients certified at the same instant spread their refreshes over the
//! jitter window, where Linkerd's rule sends them all at once.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_policy::format_go_duration;
use meshid_rotation::{Backoff, RefreshPolicy, SeededJitter};
use time::OffsetDateTime;
use time::macros::datetime;

const CLIENTS: usize = 10_000;
const NOT_BEFORE: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const NOT_AFTER: OffsetDateTime = datetime!(2026-06-02 12:00 UTC);

/// Linkerd's proxy rule: 70% of the time left until NotAfter, clamped to [10s, 24h], no jitter.
fn linkerd_refresh_at(now: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    let left = Duration::try_from(not_after - now).unwrap_or(Duration::ZERO);
    now + left
        .mul_f64(0.7)
        .clamp(Duration::from_secs(10), Duration::from_secs(86_400))
}

fn spread(times: &[OffsetDateTime]) -> Duration {
    let min = times.iter().min().unwrap();
    let max = times.iter().max().unwrap();
    Duration::try_from(*max - *min).unwrap()
}

#[test]
fn ten_thousand_clients_spread_their_refreshes() {
    let policy = RefreshPolicy::default();
    let lifetime = Duration::try_from(NOT_AFTER - NOT_BEFORE).unwrap();
    let window = policy.jitter_window(lifetime);
    assert_eq!(format_go_duration(window), "2h24m0s");

    // Each client has its own generator, as each proxy seeds its own.
    let ours: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let mut jitter = SeededJitter::new(0x1fed_f00d ^ client.wrapping_mul(0x9e37_79b9));
            policy
                .refresh_at(NOT_BEFORE, NOT_AFTER, NOT_BEFORE, &mut jitter)
                .unwrap()
        })
        .collect();
    let ours_spread = spread(&ours);
    println!(
        "refresh spread for {CLIENTS} clients: {}",
        format_go_duration(ours_spread)
    );
    // Uniform over 2h24m: with 10,000 draws the extremes are within seconds of the edges.
    assert!(
        ours_spread >= window - Duration::from_secs(60),
        "{ours_spread:?}"
    );
    assert!(ours_spread <= window);

    // No second holds more than a handful of refreshes (uniform: ~1.2 per second on average).
    let mut per_second = std::collections::HashMap::new();
    for at in &ours {
        *per_second.entry(at.unix_timestamp()).or_insert(0usize) += 1;
    }
    let busiest = per_second.values().max().copied().unwrap_or(0);
    println!("busiest second: {busiest} of {CLIENTS} refreshes");
    assert!(busiest <= 12, "{busiest}");

    // Linkerd: every client refreshes at the same instant, 16h48m after issuance.
    let linkerd: Vec<_> = (0..CLIENTS)
        .map(|_| linkerd_refresh_at(NOT_BEFORE, NOT_AFTER))
        .collect();
    let linkerd_spread = spread(&linkerd);
    println!(
        "Linkerd refresh spread for {CLIENTS} clients: {}",
        format_go_duration(linkerd_spread)
    );
    assert_eq!(linkerd_spread, Duration::ZERO);
    assert_eq!(linkerd[0], datetime!(2026-06-02 4:48 UTC));
}

#[test]
fn ten_thousand_clients_spread_their_retries_after_an_outage() {
    // The CA comes back; every proxy without a certificate fails once more and backs off.
    // Linkerd retries every 10s, all at once; full jitter spreads the first retry over
    // [100ms, 1s] and the fifth over [100ms, 16s].
    let now = NOT_BEFORE;
    let mut first = Vec::with_capacity(CLIENTS);
    let mut fifth = Vec::with_capacity(CLIENTS);
    for client in 0..CLIENTS as u64 {
        let mut jitter = SeededJitter::new(client);
        let mut backoff = Backoff::default();
        first.push(now + backoff.next_delay(now, None, &mut jitter));
        for _ in 0..3 {
            backoff.next_delay(now, None, &mut jitter);
        }
        fifth.push(now + backoff.next_delay(now, None, &mut jitter));
    }
    let (first, fifth) = (spread(&first), spread(&fifth));
    println!(
        "retry spread for {CLIENTS} clients: first {}, fifth {}",
        format_go_duration(first),
        format_go_duration(fifth)
    );
    assert!(first >= Duration::from_millis(890) && first <= Duration::from_millis(900));
    assert!(fifth >= Duration::from_millis(15_800) && fifth <= Duration::from_millis(15_900));
}

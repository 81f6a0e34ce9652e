//! No thundering herd: clients certified at the same instant spread their refreshes over the
//! jitter window (Linkerd's rule, 70% of the time left with no jitter, sends them all at once),
//! and clients failing together spread their retries.

#![allow(clippy::unwrap_used)]

use core::time::Duration;

use meshid_policy::format_go_duration;
use meshid_rotation::{Backoff, RefreshPolicy, SeededJitter};
use time::OffsetDateTime;
use time::macros::datetime;

const CLIENTS: usize = 10_000;
const NOT_BEFORE: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const NOT_AFTER: OffsetDateTime = datetime!(2026-06-02 12:00 UTC);

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
    let refreshes: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let mut jitter = SeededJitter::new(0x1fed_f00d ^ client.wrapping_mul(0x9e37_79b9));
            policy
                .refresh_at(NOT_BEFORE, NOT_AFTER, NOT_BEFORE, &mut jitter)
                .unwrap()
        })
        .collect();
    let spread_of_refreshes = spread(&refreshes);
    println!(
        "refresh spread for {CLIENTS} clients: {}",
        format_go_duration(spread_of_refreshes)
    );
    // Uniform over 2h24m: with 10,000 draws the extremes are within seconds of the edges.
    assert!(
        spread_of_refreshes >= window - Duration::from_secs(60),
        "{spread_of_refreshes:?}"
    );
    assert!(spread_of_refreshes <= window);
    // ... and the window is 70% ± 5% of the lifetime: 15h36m to 18h after NotBefore.
    assert!(refreshes.iter().min().unwrap() >= &datetime!(2026-06-02 3:36 UTC));
    assert!(refreshes.iter().max().unwrap() <= &datetime!(2026-06-02 6:00 UTC));

    // No second holds more than a handful of refreshes (uniform: ~1.2 per second on average).
    let mut per_second = std::collections::HashMap::new();
    for at in &refreshes {
        *per_second.entry(at.unix_timestamp()).or_insert(0usize) += 1;
    }
    let busiest = per_second.values().max().copied().unwrap_or(0);
    println!("busiest second: {busiest} of {CLIENTS} refreshes");
    assert!(busiest <= 12, "{busiest}");
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

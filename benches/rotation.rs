//! Rotation benchmarks: computing one refresh time.
//!
//! Inputs are deterministic: a 24h leaf issued at a fixed instant, scheduled at issuance, with
//! jitter from a seeded (non-cryptographic) SplitMix64 source.

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meshid::rotation::{RefreshPolicy, SeededJitter};
use time::macros::datetime;

fn schedule(c: &mut Criterion) {
    let not_before = datetime!(2026-06-01 12:00 UTC);
    let not_after = datetime!(2026-06-02 12:00 UTC);
    let policy = RefreshPolicy::default();
    let mut jitter = SeededJitter::new(0x1fed_f00d);
    let mut group = c.benchmark_group("rotation");
    group.bench_function("schedule", |b| {
        b.iter(|| {
            policy
                .refresh_at(
                    black_box(not_before),
                    black_box(not_after),
                    black_box(not_before),
                    &mut jitter,
                )
                .expect("a 24h leaf has a refresh time")
        });
    });
    group.finish();
}

criterion_group!(benches, schedule);
criterion_main!(benches);

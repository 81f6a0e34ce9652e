//! `identity-ca`: run the meshid identity CA on one machine.
//!
//! With no arguments it mints a trust anchor and an issuer in memory, certifies one workload's
//! CSR for its ServiceAccount, verifies the result against the anchor, and prints what a proxy
//! would receive. `--issuer DIR` and `--trust-anchors FILE` use existing credentials instead
//! (`crt.pem`/`key.pem` or `tls.crt`/`tls.key` in DIR).
#![allow(clippy::disallowed_methods)] // a binary reads the clock

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use meshid::ca::Ca;
use meshid::ca::bootstrap::{CaOptions, create_intermediate, create_root};
use meshid::csr::{Csr, CsrParams, KeyPair};
use meshid::policy::{
    GoDuration, IssuancePolicy, KeyAlgorithm, Mesh, Namespace, SanMode, ServiceAccount,
    TrustDomain, rfc3339,
};
use meshid::verify::{TrustBundle, Usage, VerifyOptions};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Parser, Debug)]
#[command(about = "meshid identity CA (in-process demo: mint, certify, verify)")]
struct Args {
    /// Trust domain of the mesh.
    #[arg(long, default_value = "cluster.local")]
    identity_trust_domain: TrustDomain,
    /// Namespace of the control plane.
    #[arg(long, default_value = "linkerd")]
    controller_namespace: Namespace,
    /// Leaf lifetime (Go duration).
    #[arg(long, default_value = "24h0m0s")]
    identity_issuance_lifetime: GoDuration,
    /// Clock-skew allowance (Go duration).
    #[arg(long, default_value = "20s")]
    identity_clock_skew_allowance: GoDuration,
    /// SANs of the leaf: dns, dns+spiffe or spiffe.
    #[arg(long, default_value = "dns")]
    san_mode: SanMode,
    /// Folder holding the issuer (crt.pem + key.pem, or tls.crt + tls.key); default: mint one.
    #[arg(long, requires = "trust_anchors")]
    issuer: Option<PathBuf>,
    /// PEM bundle of trust anchors; default: mint one.
    #[arg(long, requires = "issuer")]
    trust_anchors: Option<PathBuf>,
    /// Namespace of the demo workload.
    #[arg(long, default_value = "emojivoto")]
    namespace: String,
    /// ServiceAccount of the demo workload.
    #[arg(long, default_value = "web")]
    service_account: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let now = OffsetDateTime::now_utc();
    let mesh = Mesh::new(
        args.identity_trust_domain.clone(),
        args.controller_namespace.clone(),
    );
    let mut policy = IssuancePolicy::default();
    policy.lifetime = args.identity_issuance_lifetime.into();
    policy.clock_skew = args.identity_clock_skew_allowance.into();
    policy.san_mode = args.san_mode;

    let (bundle_pem, issuer_crt, issuer_key) = match (&args.issuer, &args.trust_anchors) {
        (Some(dir), Some(anchors)) => read_credentials(dir, anchors)?,
        _ => {
            let day = Duration::from_secs(86_400);
            let root_cn = format!(
                "root.{}.{}",
                args.controller_namespace, args.identity_trust_domain
            );
            let issuer_cn = format!(
                "identity.{}.{}",
                args.controller_namespace, args.identity_trust_domain
            );
            let root = create_root(&CaOptions::root(&root_cn, now, 3650 * day))?;
            let issuer = create_intermediate(&root, &CaOptions::issuer(&issuer_cn, now, 2 * day))?;
            println!("Minted trust anchor {root_cn} (10 years) and issuer {issuer_cn} (48h)");
            (root.pem(), issuer.pem(), issuer.key_pem().to_string())
        }
    };
    let bundle = TrustBundle::from_pem(bundle_pem.as_bytes()).context("trust anchors")?;
    let ca = Ca::new(mesh, policy, bundle.clone())?;
    let issuer = ca
        .load_issuer_pem(&issuer_crt, &issuer_key, now)
        .context("issuer")?;
    println!(
        "Issuer cert loaded: {} (valid until {})",
        issuer.subject(),
        rfc3339(issuer.not_after())
    );

    // The workload: its own key and CSR, as a proxy would make them.
    let sa = ServiceAccount::new(&args.namespace, &args.service_account)?;
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    let csr = Csr::build(
        &key,
        &CsrParams::for_service_account(ca.mesh(), &sa, args.san_mode)?,
    )?;
    let certified = ca.certify(&sa, csr.der(), now)?;

    // What the proxy checks before installing it.
    let expected = match args.san_mode {
        SanMode::Spiffe => ca.mesh().spiffe_id(&sa).to_string(),
        _ => certified.identity.to_string(),
    };
    let peer = meshid::verify::verify_identity(
        &bundle,
        &certified.leaf,
        &certified.chain,
        now,
        Usage::Either,
        &expected,
        &VerifyOptions::default(),
    )?;
    let (_, leaf) = X509Certificate::from_der(&certified.leaf).context("leaf")?;
    println!(
        "issued certificate for {} until {}",
        certified.identity,
        rfc3339(certified.not_after)
    );
    println!("  subject:    {}", leaf.subject());
    for name in peer.dns_names() {
        println!("  SAN:        DNS:{name}");
    }
    for uri in peer.uris() {
        println!("  SAN:        URI:{uri}");
    }
    println!("  serial:     {}", hex::encode(certified.serial));
    println!(
        "  validity:   {} .. {}",
        rfc3339(peer.not_before()),
        rfc3339(peer.not_after())
    );
    println!("  chain:");
    for (i, der) in peer.chain().iter().enumerate() {
        let (_, cert) = X509Certificate::from_der(der).context("chain certificate")?;
        let role = match i {
            0 => "leaf",
            _ if i + 1 == peer.chain().len() => "trust anchor",
            _ => "issuer",
        };
        println!("    [{i}] {role:<12} {}", cert.subject());
    }
    println!("verified: {expected} chains to the trust anchor as client and server");
    Ok(())
}

/// Reads a trust bundle and an issuer folder in either scheme.
fn read_credentials(
    dir: &std::path::Path,
    anchors: &std::path::Path,
) -> Result<(String, String, String)> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let bundle = read(anchors.to_path_buf())?;
    for (crt, key) in [("crt.pem", "key.pem"), ("tls.crt", "tls.key")] {
        if dir.join(crt).exists() {
            return Ok((bundle, read(dir.join(crt))?, read(dir.join(key))?));
        }
    }
    bail!("{}: no crt.pem/key.pem or tls.crt/tls.key", dir.display())
}

//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same entry points
//! as the cargo-fuzz targets, so they run on every `cargo test` with a stable toolchain, and
//! checks each input's recorded verdict: `fuzz/corpus/verdicts.txt` says whether the library
//! accepts or refuses it, so a parser that began refusing everything (or accepting garbage)
//! fails here, not only one that panics.
//!
//! The seed inputs (`seed-*` files) and their verdicts are written by the ignored
//! `regenerate_seed_corpora` test:
//!
//! ```text
//! cargo test -p meshid --test fuzz_corpus -- --ignored regenerate
//! ```
//!
//! Keys and ECDSA signatures are random, so regenerated seeds differ byte for byte while
//! covering the same cases. Other files in a corpus folder (regression inputs, minimized
//! crashes) are replayed too and never touched by the generator; give them a verdict line by
//! hand to have it checked.

use std::collections::BTreeMap;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use meshid::ca::Ca;
use meshid::ca::bootstrap::{CaCertificate, CaOptions, create_intermediate, create_root};
use meshid::csr::{Csr, CsrLimits, CsrParams, KeyPair, ParsedCsr};
use meshid::policy::{
    IssuancePolicy, KeyAlgorithm, Mesh, San, SanMode, ServiceAccount, parse_go_duration,
};
use meshid::verify::{TrustBundle, Usage, VerifyOptions, verify_chain};
use meshid_fuzzing::{self as fuzzing, CHAIN_NOW, decode_chain, encode_chain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// A `meshid_fuzzing` entry point.
type EntryPoint = fn(&[u8]);

/// Every fuzz target and its entry point.
const TARGETS: [(&str, EntryPoint); 5] = [
    ("csr", fuzzing::csr),
    ("chain", fuzzing::chain),
    ("pem_bundle", fuzzing::pem_bundle),
    ("duration", fuzzing::duration),
    ("kubeconfig", fuzzing::kubeconfig),
];

/// Generated files start with this prefix; the generator replaces only these.
const SEED_PREFIX: &str = "seed-";

/// The seed certificates are valid from here ...
const NOT_BEFORE: OffsetDateTime = datetime!(2020-01-01 0:00 UTC);
/// ... to here, a range that holds [`CHAIN_NOW`] for good.
const NOT_AFTER: OffsetDateTime = datetime!(2099-12-31 23:59:59 UTC);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

/// The verdict file, next to the corpus folders (not inside one: cargo-fuzz would take it for
/// an input).
fn verdicts_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join("verdicts.txt")
}

const ACCEPTED: &str = "accepted";
const REFUSED: &str = "refused";

/// `<target>/<file>` -> accepted, from `verdicts.txt` (`<target>/<file> accepted|refused` lines;
/// blank lines and `#` comments ignored).
fn read_verdicts() -> Result<BTreeMap<String, bool>> {
    let path = verdicts_path();
    let text = fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut verdicts = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line
            .split_once(' ')
            .and_then(|(input, verdict)| match verdict {
                ACCEPTED => Some((input, true)),
                REFUSED => Some((input, false)),
                _ => None,
            });
        let (input, accepted) = parsed.with_context(|| {
            format!(
                "{}:{}: expected `<target>/<file> accepted|refused`",
                path.display(),
                n + 1
            )
        })?;
        ensure!(
            verdicts.insert(input.to_owned(), accepted).is_none(),
            "{}:{}: {input} has two verdicts",
            path.display(),
            n + 1
        );
    }
    Ok(verdicts)
}

fn write_verdicts(verdicts: &BTreeMap<String, bool>) -> Result<()> {
    let mut text = String::from(
        "# Whether the library accepts each fuzz corpus input, checked by tests/fuzz_corpus.rs.\n\
         # `seed-*` lines are written with the seeds (cargo test -p meshid --test fuzz_corpus --\n\
         # --ignored regenerate); add a line by hand for a regression input to check it too.\n",
    );
    for (input, accepted) in verdicts {
        let verdict = if *accepted { ACCEPTED } else { REFUSED };
        text.push_str(&format!("{input} {verdict}\n"));
    }
    let path = verdicts_path();
    fs::write(&path, text).with_context(|| path.display().to_string())
}

// === replay ===

#[test]
fn replay_corpora() -> Result<()> {
    let verdicts = read_verdicts()?;
    let mut panicked = Vec::new();
    let mut wrong = Vec::new();
    let mut unlisted = Vec::new();
    let mut replayed = Vec::new();
    for (target, entry_point) in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| dir.display().to_string())?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        files.retain(|path| path.is_file());
        files.sort();
        ensure!(
            !files.is_empty(),
            "the {target} corpus ({}) is empty",
            dir.display()
        );
        let (mut accepted, mut refused) = (0, 0);
        for path in &files {
            let data = fs::read(path).with_context(|| path.display().to_string())?;
            if panic::catch_unwind(|| entry_point(&data)).is_err() {
                panicked.push(path.display().to_string());
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 name", path.display()))?;
            let input = format!("{target}/{name}");
            let accepts = accepts(target, &data)?;
            if accepts {
                accepted += 1;
            } else {
                refused += 1;
            }
            match verdicts.get(&input) {
                Some(want) if *want == accepts => {}
                Some(want) => wrong.push(format!(
                    "{input}: {}, recorded {}",
                    if accepts { ACCEPTED } else { REFUSED },
                    if *want { ACCEPTED } else { REFUSED }
                )),
                None if name.starts_with(SEED_PREFIX) => unlisted.push(input.clone()),
                None => {}
            }
            replayed.push(input);
        }
        println!(
            "{target}: replayed {} inputs, {accepted} accepted, {refused} refused",
            files.len()
        );
        // Every corpus keeps inputs on both sides, so the success paths are fuzzed too.
        ensure!(
            accepted > 0 && refused > 0,
            "the {target} corpus has {accepted} accepted and {refused} refused inputs; it \
             needs both"
        );
    }
    let missing: Vec<_> = verdicts
        .keys()
        .filter(|input| !replayed.contains(input))
        .collect();
    ensure!(
        panicked.is_empty(),
        "corpus inputs that panicked:\n{}",
        panicked.join("\n")
    );
    ensure!(
        wrong.is_empty(),
        "corpus inputs whose verdict changed (fuzz/corpus/verdicts.txt):\n{}",
        wrong.join("\n")
    );
    ensure!(
        unlisted.is_empty(),
        "seed inputs without a verdict in fuzz/corpus/verdicts.txt:\n{}",
        unlisted.join("\n")
    );
    ensure!(
        missing.is_empty(),
        "fuzz/corpus/verdicts.txt lists inputs that are not in the corpus: {missing:?}"
    );
    Ok(())
}

// === verdicts ===

/// Whether the library accepts `data` the way the `target` entry point feeds it.
fn accepts(target: &str, data: &[u8]) -> Result<bool> {
    let sa = ServiceAccount::new("emojivoto", "web")?;
    Ok(match target {
        "csr" => ParsedCsr::from_der(data, &CsrLimits::default()).is_ok_and(|parsed| {
            IssuancePolicy::default()
                .decide(&Mesh::default(), &sa, parsed.content())
                .is_ok()
        }),
        "chain" => decode_chain(data).is_some_and(|blobs| {
            let [anchor, leaf, intermediates @ ..] = blobs.as_slice() else {
                return false;
            };
            let intermediates: Vec<_> = intermediates
                .iter()
                .map(|der| der.to_vec().into())
                .collect();
            TrustBundle::from_der(vec![anchor.to_vec().into()]).is_ok_and(|bundle| {
                verify_chain(
                    &bundle,
                    &leaf.to_vec().into(),
                    &intermediates,
                    CHAIN_NOW,
                    Usage::Either,
                    &VerifyOptions::default(),
                )
                .is_ok()
            })
        }),
        "pem_bundle" => TrustBundle::from_pem(data).is_ok(),
        "duration" => std::str::from_utf8(data).is_ok_and(|text| parse_go_duration(text).is_ok()),
        "kubeconfig" => std::str::from_utf8(data).is_ok_and(|text| {
            meshid::kube::kube::config::Kubeconfig::from_yaml(text).is_ok_and(|kubeconfig| {
                meshid::kube::KubeApiConfig::check_kubeconfig(&kubeconfig, None, "kubeconfig")
                    .is_ok()
            })
        }),
        _ => anyhow::bail!("no fuzz target {target}"),
    })
}

// === seeds ===

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run it to regenerate the seed corpora"]
fn regenerate_seed_corpora() -> Result<()> {
    let pki = Pki::new()?;
    // Hand-written verdicts of other inputs are kept; the seeds' are rewritten.
    let mut verdicts = read_verdicts().unwrap_or_default();
    verdicts.retain(|input, _| {
        !input
            .split_once('/')
            .is_some_and(|(_, name)| name.starts_with(SEED_PREFIX))
    });
    write_seeds("csr", &csr_seeds()?, &mut verdicts)?;
    write_seeds("chain", &chain_seeds(&pki)?, &mut verdicts)?;
    write_seeds("pem_bundle", &pem_bundle_seeds(&pki)?, &mut verdicts)?;
    write_seeds("duration", &duration_seeds(), &mut verdicts)?;
    write_seeds("kubeconfig", &kubeconfig_seeds(), &mut verdicts)?;
    write_verdicts(&verdicts)
}

/// A seed input: its file name (after [`SEED_PREFIX`]), its bytes, and whether the library
/// accepts it (so the seeds reach the success paths, where the fuzz invariants are checked).
type Seed = (&'static str, Vec<u8>, bool);

/// Replaces the `seed-*` files of a corpus folder with `seeds`, checking that each one is
/// accepted or refused as intended and replays without a panic, and records their verdicts.
fn write_seeds(target: &str, seeds: &[Seed], verdicts: &mut BTreeMap<String, bool>) -> Result<()> {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(SEED_PREFIX))
        {
            fs::remove_file(&path).with_context(|| path.display().to_string())?;
        }
    }
    let (_, entry_point) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .with_context(|| format!("no fuzz target {target}"))?;
    for (name, data, accepted) in seeds {
        ensure!(
            accepts(target, data)? == *accepted,
            "{target} seed {name}: expected accepted = {accepted}"
        );
        entry_point(data);
        let path = dir.join(format!("{SEED_PREFIX}{name}"));
        fs::write(&path, data).with_context(|| path.display().to_string())?;
        verdicts.insert(format!("{target}/{SEED_PREFIX}{name}"), *accepted);
    }
    println!("{target}: wrote {} seeds to {}", seeds.len(), dir.display());
    Ok(())
}

fn csr_seeds() -> Result<Vec<Seed>> {
    let mesh = Mesh::default();
    let sa = ServiceAccount::new("emojivoto", "web")?;
    let identity = mesh.identity(&sa)?.to_string();
    let p256 = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    let p384 = KeyPair::generate(KeyAlgorithm::EcdsaP384)?;
    let build = |key: &KeyPair, params: &CsrParams| Csr::build(key, params).map(Csr::into_der);

    let valid = build(
        &p256,
        &CsrParams::for_service_account(&mesh, &sa, SanMode::Dns)?,
    )?;
    let mut no_cn = CsrParams::new(&identity);
    no_cn.common_name = None;
    let mut uri_too = CsrParams::new(&identity);
    uri_too.sans.push(San::Uri(mesh.spiffe_id(&sa).to_string()));
    let other_identity = CsrParams::new(&identity.replace("web.", "api."));
    let mut bad_signature = valid.clone();
    if let Some(last) = bad_signature.last_mut() {
        *last ^= 0x01;
    }
    // An IP SAN and a CA request, built with rcgen directly.
    let mut ip_and_ca = CertificateParams::new(vec![identity.clone()])?;
    ip_and_ca
        .subject_alt_names
        .push(SanType::IpAddress([10, 0, 0, 1].into()));
    ip_and_ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ip_and_ca = ip_and_ca.serialize_request(&p256)?.der().to_vec();
    // An Ed25519 key: the CSR verifies, but the policy wants ECDSA.
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let ed25519 = CertificateParams::new(vec![identity.clone()])?
        .serialize_request(&ed25519)?
        .der()
        .to_vec();

    Ok(vec![
        ("valid-p256.der", valid.clone(), true),
        ("valid-p256-no-cn.der", build(&p256, &no_cn)?, true),
        ("p384.der", build(&p384, &CsrParams::new(&identity))?, false),
        ("dns-and-spiffe.der", build(&p256, &uri_too)?, false),
        ("other-identity.der", build(&p256, &other_identity)?, false),
        ("bad-signature.der", bad_signature, false),
        ("ip-san-and-ca.der", ip_and_ca, false),
        ("ed25519.der", ed25519, false),
        (
            "truncated-half.der",
            valid[..valid.len() / 2].to_vec(),
            false,
        ),
        (
            "truncated-last-byte.der",
            valid[..valid.len() - 1].to_vec(),
            false,
        ),
        ("truncated-header.der", valid[..4].to_vec(), false),
    ])
}

fn chain_seeds(pki: &Pki) -> Result<Vec<Seed>> {
    let root = pki.root.der();
    let issuer = pki.issuer.der();
    let leaf_der = pki.leaf.der();
    // What the CA itself issues at the fuzzing time: a 24-hour leaf under the issuer.
    let ca = Ca::new(
        Mesh::default(),
        IssuancePolicy::default(),
        TrustBundle::from_der(vec![root.clone()])?,
    )?;
    ca.load_issuer_pem(&pki.issuer.pem(), &pki.issuer.key_pem(), CHAIN_NOW)?;
    let sa = ServiceAccount::new("emojivoto", "web")?;
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    let params = CsrParams::for_service_account(ca.mesh(), &sa, SanMode::Dns)?;
    let certified = ca.certify(&sa, Csr::build(&key, &params)?.der(), CHAIN_NOW)?;
    let mut certified_chain: Vec<&[u8]> = vec![root, &certified.leaf];
    certified_chain.extend(certified.chain.iter().map(|der| der.as_ref()));
    let leaf_under_root = leaf(&pki.root, NOT_BEFORE, NOT_AFTER)?;
    let expired = leaf(&pki.issuer, NOT_BEFORE, datetime!(2021-01-01 0:00 UTC))?;

    let container = |blobs: &[&[u8]]| encode_chain(blobs).context("chain container too large");
    let mut truncated = container(&[root, leaf_der, issuer])?;
    truncated.truncate(truncated.len() / 2);
    Ok(vec![
        (
            "root-leaf-issuer.bin",
            container(&[root, leaf_der, issuer])?,
            true,
        ),
        (
            "root-certified-leaf.bin",
            container(&certified_chain)?,
            true,
        ),
        (
            "root-leaf.bin",
            container(&[root, leaf_under_root.der()])?,
            true,
        ),
        ("missing-issuer.bin", container(&[root, leaf_der])?, false),
        (
            "other-root.bin",
            container(&[pki.other_root.der(), leaf_der, issuer])?,
            false,
        ),
        (
            "expired-leaf.bin",
            container(&[root, expired.der(), issuer])?,
            false,
        ),
        ("leaf-is-ca.bin", container(&[root, issuer])?, false),
        (
            "leaf-as-anchor.bin",
            container(&[leaf_der, leaf_der])?,
            false,
        ),
        ("truncated.bin", truncated, false),
    ])
}

fn pem_bundle_seeds(pki: &Pki) -> Result<Vec<Seed>> {
    let root = pki.root.pem();
    let other = pki.other_root.pem();
    let third = pki.third_root.pem();
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    let csr = Csr::build(
        &key,
        &CsrParams::new("web.emojivoto.serviceaccount.identity"),
    )?
    .pem();
    // The root with a character of its base64 body replaced.
    let mut lines: Vec<&str> = root.lines().collect();
    let corrupted = format!("!{}", lines[2].get(1..).unwrap_or_default());
    lines[2] = &corrupted;
    let broken = lines.join("\n");
    let unterminated = root.lines().take(4).collect::<Vec<_>>().join("\n");
    let crlf = format!("# trust anchors\r\n{}\r\n", root.replace('\n', "\r\n"));

    Ok(vec![
        ("one-anchor.pem", root.clone().into_bytes(), true),
        (
            "two-anchors.pem",
            format!("{root}{other}").into_bytes(),
            true,
        ),
        (
            "three-anchors.pem",
            format!("{root}{other}{third}").into_bytes(),
            true,
        ),
        (
            "duplicate.pem",
            format!("{root}{other}{root}").into_bytes(),
            true,
        ),
        ("comments-and-crlf.pem", crlf.into_bytes(), true),
        (
            "broken-base64.pem",
            format!("{other}{broken}").into_bytes(),
            false,
        ),
        (
            "unterminated.pem",
            format!("{other}{unterminated}").into_bytes(),
            false,
        ),
        (
            "not-a-certificate.pem",
            format!("{root}{csr}").into_bytes(),
            false,
        ),
        ("leaf-not-ca.pem", pki.leaf.pem().into_bytes(), false),
        ("no-blocks.pem", b"not a PEM bundle\n".to_vec(), false),
    ])
}

fn duration_seeds() -> Vec<Seed> {
    [
        ("24h0m0s", "24h0m0s", true),
        ("20s", "20s", true),
        ("1.5h", "1.5h", true),
        ("1h30m", "1h30m", true),
        ("500ms", "500ms", true),
        ("micro", "1.5\u{b5}s", true),
        ("zero", "0", true),
        ("plus-fraction", "+.5s", true),
        ("max", "2562047h47m16.854775807s", true),
        ("negative", "-5s", false),
        ("days", "5d", false),
        ("overflow", "9999999999999h", false),
        ("space", "1h 30m", false),
    ]
    .into_iter()
    .map(|(name, text, accepted)| (name, text.as_bytes().to_vec(), accepted))
    .collect()
}

fn kubeconfig_seeds() -> Vec<Seed> {
    let with_user = |user: &str| {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dev\n\
             contexts:\n- name: dev\n  context: {{cluster: c, user: u}}\n\
             clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    \
             certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n\
             users:\n- name: u\n  user: {user}\n"
        )
    };
    [
        ("token", with_user("{token: abc.def.ghi}"), true),
        ("token-file", with_user("{tokenFile: sa.token}"), true),
        (
            "client-certificate-data",
            with_user("{client-certificate-data: YQ==, client-key-data: Yg==}"),
            true,
        ),
        (
            "exec",
            with_user(
                "{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, \
                 args: [eks, get-token, --cluster-name, prod], env: [{name: AWS_PROFILE, value: \
                 prod}], provideClusterInfo: true}}",
            ),
            true,
        ),
        ("auth-provider", with_user("{auth-provider: {name: gcp}}"), false),
        ("basic-auth", with_user("{username: admin, password: secret}"), false),
        ("client-key-missing", with_user("{client-certificate-data: YQ==}"), false),
        (
            "insecure",
            "current-context: dev\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\n\
             clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: true}}]\n\
             users: [{name: u, user: {token: t}}]\n"
                .to_owned(),
            false,
        ),
        ("not-a-mapping", "- a\n- b\n".to_owned(), false),
        ("empty", String::new(), false),
    ]
    .into_iter()
    .map(|(name, text, accepted)| (name, text.into_bytes(), accepted))
    .collect()
}

// === a fixed PKI ===

/// Two unrelated roots, an issuer under the first and a leaf under the issuer, all valid from
/// [`NOT_BEFORE`] to [`NOT_AFTER`].
struct Pki {
    root: CaCertificate,
    other_root: CaCertificate,
    third_root: CaCertificate,
    issuer: CaCertificate,
    leaf: rcgen::Certificate,
}

impl Pki {
    fn new() -> Result<Self> {
        let ca = |cn: &str, issuer: bool| {
            let validity = Duration::ZERO;
            let mut options = if issuer {
                CaOptions::issuer(cn, NOT_BEFORE, validity)
            } else {
                CaOptions::root(cn, NOT_BEFORE, validity)
            };
            options.not_after = NOT_AFTER;
            options
        };
        let root = create_root(&ca("root.linkerd.cluster.local", false))?;
        let other_root = create_root(&ca("other.root.linkerd.cluster.local", false))?;
        let third_root = create_root(&ca("third.root.linkerd.cluster.local", false))?;
        let issuer = create_intermediate(&root, &ca("identity.linkerd.cluster.local", true))?;
        let leaf = leaf(&issuer, NOT_BEFORE, NOT_AFTER)?;
        Ok(Self {
            root,
            other_root,
            third_root,
            issuer,
            leaf,
        })
    }
}

/// A mesh leaf for `emojivoto/web` signed by `issuer`.
fn leaf(
    issuer: &CaCertificate,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<rcgen::Certificate> {
    let identity = Mesh::default().identity(&ServiceAccount::new("emojivoto", "web")?)?;
    let mut params = CertificateParams::new(vec![identity.to_string()])?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity.as_str());
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&[0x4d, 0x65, 0x73, 0x68]));
    params.use_authority_key_identifier_extension = true;
    let signer = rcgen::Issuer::from_ca_cert_der(issuer.der(), issuer.key())?;
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)?;
    Ok(params.signed_by(&key, &signer)?)
}

//! Chain verification under the mesh profile, and peer identity matching.

use core::cell::Cell;
use core::fmt;
use core::time::Duration;
use std::sync::OnceLock;

use meshid_policy::{KeyAlgorithm, PublicKeyKind};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage, VerifiedPath};

use crate::{Anchor, Error, TrustBundle, x509};

/// The scheme prefix of a SPIFFE ID.
const SPIFFE_SCHEME: &str = "spiffe://";

// === impl Usage ===

/// What the peer's certificate is verified for: its extended key usage must allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Usage {
    /// TLS server authentication (EKU serverAuth): verifying the server an outbound
    /// connection reached.
    Server,
    /// TLS client authentication (EKU clientAuth): verifying the client of an inbound
    /// connection.
    Client,
    /// Either serverAuth or clientAuth: a workload's own certificate, which it presents in
    /// both roles.
    Either,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "TLS server authentication (serverAuth)",
            Self::Client => "TLS client authentication (clientAuth)",
            Self::Either => "TLS server or client authentication (serverAuth or clientAuth)",
        })
    }
}

// === impl VerifyOptions ===

/// How strict [`verify_chain`] is, beyond what webpki checks.
///
/// The default is the mesh profile: ECDSA P-256 or P-384 leaf keys, any number of
/// intermediates (webpki bounds the path). Change fields on a default value:
///
/// ```
/// let mut options = meshid_verify::VerifyOptions::default();
/// options.key_algorithms = None; // accept any leaf key webpki can verify with
/// options.max_intermediates = Some(1); // leaf -> issuer -> anchor, as Linkerd issues
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The leaf key algorithms accepted; `None` accepts any key webpki can verify a handshake
    /// signature with (ECDSA P-256/P-384, Ed25519, RSA of 2048 to 8192 bits in whole bytes).
    /// Default: P-256 and P-384, the keys meshid issues for.
    pub key_algorithms: Option<Vec<KeyAlgorithm>>,
    /// The most intermediates a verified path may have; `None` (the default) leaves the bound
    /// to webpki. Paths that are too long are skipped during path building, so a shorter
    /// path through other intermediates is still found.
    pub max_intermediates: Option<usize>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            key_algorithms: Some(KeyAlgorithm::ALL.to_vec()),
            max_intermediates: None,
        }
    }
}

// === impl VerifiedPeer ===

/// A peer certificate that [`verify_chain`] accepted, with what the caller needs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPeer {
    dns_names: Vec<String>,
    uris: Vec<String>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key: PublicKeyKind,
    chain: Chain,
    anchor_index: usize,
}

impl VerifiedPeer {
    /// The leaf's DNS SANs, in certificate order.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The leaf's URI SANs (SPIFFE IDs), in certificate order.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The leaf's NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The leaf's NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The leaf's public key.
    pub fn key(&self) -> &PublicKeyKind {
        &self.key
    }

    /// The verified path: the leaf, the intermediates webpki used (issuer first), then the
    /// trust anchor.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        self.chain.certificates()
    }

    /// The position in the [`TrustBundle`] of the anchor the path ends in.
    pub fn anchor_index(&self) -> usize {
        self.anchor_index
    }

    /// The peer's identity as Linkerd picks it: the first DNS SAN, else the first URI SAN.
    pub fn identity(&self) -> Option<&str> {
        self.dns_names
            .first()
            .or_else(|| self.uris.first())
            .map(String::as_str)
    }

    /// Whether the leaf names `expected`: exactly (ASCII case-insensitively) among its DNS
    /// SANs, or, for a SPIFFE ID (`spiffe://...`), exactly among its URI SANs.
    ///
    /// There is no wildcard matching: mesh identities are exact names.
    pub fn matches(&self, expected: &str) -> bool {
        if expected.starts_with(SPIFFE_SCHEME) {
            self.uris.iter().any(|u| u == expected)
        } else {
            self.dns_names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(expected))
        }
    }

    /// The leaf's names, DNS SANs then URI SANs: what an error says was found instead of the
    /// expected identity.
    pub fn names(&self) -> Vec<String> {
        self.dns_names.iter().chain(&self.uris).cloned().collect()
    }
}

// === impl Chain ===

/// A verified path, copied once as one buffer and split into certificates when first asked
/// for: most callers only need the names.
#[derive(Clone)]
struct Chain {
    /// The DER of the leaf and of each intermediate used, back to back.
    der: Vec<u8>,
    /// Where each certificate of `der` ends.
    ends: Vec<usize>,
    /// The bundle the path ends in, and the anchor's position in it.
    bundle: TrustBundle,
    anchor_index: usize,
    certificates: OnceLock<Vec<CertificateDer<'static>>>,
}

impl Chain {
    /// The leaf and the intermediates used (`intermediates` yields them in path order),
    /// copied into one buffer.
    fn new<'a, I: Iterator<Item = CertificateDer<'a>>>(
        leaf: &[u8],
        intermediates: impl Fn() -> I,
        bundle: &TrustBundle,
        anchor_index: usize,
    ) -> Self {
        // Two passes over the path: the buffer is allocated once, at its final size.
        let len = intermediates().fold(leaf.len(), |len, cert| len + cert.len());
        let mut der = Vec::with_capacity(len);
        let mut ends = Vec::with_capacity(4);
        der.extend_from_slice(leaf);
        ends.push(der.len());
        for cert in intermediates() {
            der.extend_from_slice(&cert);
            ends.push(der.len());
        }
        Self {
            der,
            ends,
            bundle: bundle.clone(),
            anchor_index,
            certificates: OnceLock::new(),
        }
    }

    fn certificates(&self) -> &[CertificateDer<'static>] {
        self.certificates.get_or_init(|| {
            let starts = core::iter::once(0).chain(self.ends.iter().copied());
            let mut certs: Vec<CertificateDer<'static>> = starts
                .zip(&self.ends)
                .map(|(start, &end)| CertificateDer::from(self.der[start..end].to_vec()))
                .collect();
            if let Some(anchor) = self.bundle.anchor(self.anchor_index) {
                certs.push(anchor.der().clone());
            }
            certs
        })
    }
}

impl PartialEq for Chain {
    fn eq(&self, other: &Self) -> bool {
        fn anchor(chain: &Chain) -> Option<&CertificateDer<'static>> {
            chain.bundle.anchor(chain.anchor_index).map(Anchor::der)
        }
        self.der == other.der && self.ends == other.ends && anchor(self) == anchor(other)
    }
}

impl Eq for Chain {}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.certificates()).finish()
    }
}

// === verification ===

/// Verifies `leaf` (with the `intermediates` the peer sent) against `bundle` at `now`, for
/// `usage`, under the mesh profile of `options`.
///
/// webpki builds and checks the path (signatures with ring's algorithms, validity of the leaf
/// and intermediates, basic constraints, name constraints, EKU "required if present" on the
/// issuers). No DNS name is checked here: match the identity with [`VerifiedPeer::matches`]
/// or use [`verify_identity`]. On top of webpki, the mesh profile refuses:
///
/// - a leaf that is a CA ([`Error::LeafIsCa`]);
/// - a leaf without EKU ([`Error::MissingEku`]) or whose EKU does not allow `usage`
///   ([`Error::EkuMismatch`]);
/// - a leaf whose EKU includes anyExtendedKeyUsage ([`Error::LeafAnyEku`]), whose key usage
///   asserts keyCertSign ([`Error::LeafKeyCertSign`]) or whose serial number is zero
///   ([`Error::LeafSerialZero`]);
/// - a leaf key outside [`VerifyOptions::key_algorithms`] ([`Error::KeyAlgorithmNotAllowed`]),
///   or, when that is `None`, a key no webpki algorithm can verify with, such as P-192 or
///   RSA-1024 ([`Error::KeyNotSupported`]);
/// - a path ending in an anchor that is not valid at `now` ([`Error::AnchorExpired`],
///   [`Error::AnchorNotYetValid`]); path building moves on to other anchors first;
/// - a path with more than [`VerifyOptions::max_intermediates`] intermediates.
///
/// The leaf checks run before any signature is verified. A `now` before 1970 is taken as
/// 1970-01-01.
pub fn verify_chain(
    bundle: &TrustBundle,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: OffsetDateTime,
    usage: Usage,
    options: &VerifyOptions,
) -> Result<VerifiedPeer, Error> {
    if bundle.is_empty() {
        return Err(Error::BundleEmpty);
    }

    // The mesh profile, on the leaf parsed once.
    let leaf_info = x509::Leaf::parse(leaf).map_err(Error::MalformedLeaf)?;
    if leaf_info.ca {
        return Err(Error::LeafIsCa);
    }
    let eku = leaf_info.eku.as_ref().ok_or(Error::MissingEku)?;
    let allowed = match usage {
        Usage::Server => eku.server_auth,
        Usage::Client => eku.client_auth,
        Usage::Either => eku.server_auth || eku.client_auth,
    };
    if !allowed {
        return Err(Error::EkuMismatch {
            usage,
            found: x509::eku_names(eku),
        });
    }
    if eku.any {
        return Err(Error::LeafAnyEku);
    }
    if leaf_info.key_cert_sign {
        return Err(Error::LeafKeyCertSign);
    }
    if leaf_info.serial.iter().all(|&b| b == 0) {
        return Err(Error::LeafSerialZero);
    }
    let key = leaf_info.key.clone();
    match &options.key_algorithms {
        Some(algorithms) if !key.algorithm().is_some_and(|alg| algorithms.contains(&alg)) => {
            return Err(Error::KeyAlgorithmNotAllowed {
                found: key,
                allowed: algorithms.clone(),
            });
        }
        None if !x509::webpki_can_use(&key) => return Err(Error::KeyNotSupported { found: key }),
        _ => {}
    }
    let (dns_names, uris) = leaf_info.san_names();
    let (not_before, not_after) = (leaf_info.not_before, leaf_info.not_after);

    // Path building. For `Either`, try the purpose the leaf states first (serverAuth if it
    // has both) and the other only if an issuer's EKU rules the first out.
    let (first, second) = match usage {
        Usage::Server => (KeyUsage::server_auth(), None),
        Usage::Client => (KeyUsage::client_auth(), None),
        Usage::Either if eku.server_auth && eku.client_auth => {
            (KeyUsage::server_auth(), Some(KeyUsage::client_auth()))
        }
        Usage::Either if eku.server_auth => (KeyUsage::server_auth(), None),
        Usage::Either => (KeyUsage::client_auth(), None),
    };
    let end_entity = EndEntityCert::try_from(leaf).map_err(Error::Chain)?;
    let paths = PathCheck::new(bundle, now, options);
    let mut result = paths.build(&end_entity, intermediates, first, leaf);
    if let (Err(Error::Chain(e)), Some(second)) = (&result, second)
        && is_eku_error(e)
    {
        result = paths.build(&end_entity, intermediates, second, leaf);
    }
    let (chain, anchor_index) = result?;

    Ok(VerifiedPeer {
        dns_names,
        uris,
        not_before,
        not_after,
        key,
        chain,
        anchor_index,
    })
}

/// [`verify_chain`], then requires the leaf to name `expected` (see
/// [`VerifiedPeer::matches`]); otherwise fails with [`Error::IdentityMismatch`].
pub fn verify_identity(
    bundle: &TrustBundle,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: OffsetDateTime,
    usage: Usage,
    expected: &str,
    options: &VerifyOptions,
) -> Result<VerifiedPeer, Error> {
    let peer = verify_chain(bundle, leaf, intermediates, now, usage, options)?;
    if peer.matches(expected) {
        Ok(peer)
    } else {
        Err(Error::IdentityMismatch {
            expected: expected.to_owned(),
            found: peer.names(),
        })
    }
}

/// The checks webpki calls back for each candidate path, and what they rejected last.
struct PathCheck<'a> {
    bundle: &'a TrustBundle,
    now: OffsetDateTime,
    unix_now: UnixTime,
    max_intermediates: Option<usize>,
    /// The last rejection: the webpki error handed back, and ours.
    rejected: Cell<Option<(webpki::Error, Error)>>,
}

impl<'a> PathCheck<'a> {
    fn new(bundle: &'a TrustBundle, now: OffsetDateTime, options: &VerifyOptions) -> Self {
        Self {
            bundle,
            now,
            unix_now: unix_time(now),
            max_intermediates: options.max_intermediates,
            rejected: Cell::new(None),
        }
    }

    /// Builds a path for `usage`; on success, the chain (copied) and the anchor's index.
    fn build(
        &self,
        end_entity: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        usage: KeyUsage,
        leaf: &CertificateDer<'_>,
    ) -> Result<(Chain, usize), Error> {
        let check = |path: &VerifiedPath<'_>| self.check(path);
        let algorithms = self
            .bundle
            .signatures()
            .algorithms(webpki::ALL_VERIFICATION_ALGS);
        let algorithms: Vec<&dyn SignatureVerificationAlgorithm> = algorithms
            .iter()
            .map(|alg| alg as &dyn SignatureVerificationAlgorithm)
            .collect();
        let path = end_entity
            .verify_for_usage(
                &algorithms,
                self.bundle.trust_anchors(),
                intermediates,
                self.unix_now,
                usage,
                None,
                Some(&check),
            )
            .map_err(|e| self.map_error(e))?;
        let anchor_index = self.anchor_index(path.anchor()).ok_or(Error::Chain(
            // The anchor webpki returns is one of the bundle's: unreachable, but not a panic.
            webpki::Error::UnknownIssuer,
        ))?;
        let intermediates = || path.intermediate_certificates().map(|c| c.der());
        let chain = Chain::new(leaf, intermediates, self.bundle, anchor_index);
        Ok((chain, anchor_index))
    }

    /// The mesh's checks of a path webpki verified up to an anchor.
    fn check(&self, path: &VerifiedPath<'_>) -> Result<(), webpki::Error> {
        let index = self.anchor_index(path.anchor());
        if let Some((index, anchor)) = index.and_then(|i| Some((i, self.bundle.anchor(i)?))) {
            if self.now > anchor.not_after() {
                return self.reject(
                    webpki::Error::CertExpired {
                        time: self.unix_now,
                        not_after: unix_time(anchor.not_after()),
                    },
                    Error::AnchorExpired {
                        index,
                        not_after: anchor.not_after(),
                        now: self.now,
                    },
                );
            }
            if self.now < anchor.not_before() {
                return self.reject(
                    webpki::Error::CertNotValidYet {
                        time: self.unix_now,
                        not_before: unix_time(anchor.not_before()),
                    },
                    Error::AnchorNotYetValid {
                        index,
                        not_before: anchor.not_before(),
                        now: self.now,
                    },
                );
            }
        }
        if let Some(max) = self.max_intermediates {
            let found = path.intermediate_certificates().count();
            if found > max {
                return self.reject(
                    webpki::Error::MaximumPathDepthExceeded,
                    Error::TooManyIntermediates { found, max },
                );
            }
        }
        Ok(())
    }

    fn reject(&self, webpki: webpki::Error, ours: Error) -> Result<(), webpki::Error> {
        self.rejected.set(Some((webpki.clone(), ours)));
        Err(webpki)
    }

    /// Our error for what webpki reported: if it is the one our check handed back last, the
    /// reason behind it.
    fn map_error(&self, err: webpki::Error) -> Error {
        match self.rejected.take() {
            Some((handed_back, ours)) if handed_back == err => ours,
            _ => Error::Chain(err),
        }
    }

    fn anchor_index(&self, anchor: &TrustAnchor<'_>) -> Option<usize> {
        // webpki hands back a reference into the slice it was given (`VerifiedPath::anchor`).
        self.bundle
            .trust_anchors()
            .iter()
            .position(|a| core::ptr::eq(a, anchor))
    }
}

fn is_eku_error(err: &webpki::Error) -> bool {
    #[allow(deprecated)] // Older webpki releases report the variant without context.
    let plain = matches!(err, webpki::Error::RequiredEkuNotFound);
    plain || matches!(err, webpki::Error::RequiredEkuNotFoundContext(_))
}

/// `now` for webpki; times before the epoch become the epoch.
fn unix_time(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

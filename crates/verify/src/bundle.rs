//! Trust bundles: the set of trust anchors a workload accepts peers under.

use core::fmt;
use std::collections::HashSet;
use std::sync::Arc;

use meshid_policy::PublicKeyKind;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use time::OffsetDateTime;

use crate::anchor_signatures::AnchorSignatures;
use crate::{AnchorProblem, Error, MalformedCertificate, PemProblem, x509};

/// The PEM label of a certificate.
const CERTIFICATE_LABEL: &str = "CERTIFICATE";
const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";

// === impl TrustBundle ===

/// A set of trust anchors, parsed once and kept ready for path building.
///
/// Anchors keep the order they were first seen in; duplicates (same DER) are dropped. Equality
/// is set equality of the anchors' DER. Cloning is cheap (the anchors are shared).
///
/// [`TrustBundle::from_pem`] and [`TrustBundle::from_der`] refuse an empty bundle; the set
/// operations [`TrustBundle::difference`] and [`TrustBundle::union`] may return one (check
/// [`TrustBundle::is_empty`]). Verifying against an empty bundle fails with
/// [`Error::BundleEmpty`].
#[derive(Clone)]
pub struct TrustBundle {
    inner: Arc<Inner>,
}

struct Inner {
    anchors: Vec<Anchor>,
    /// Parallel to `anchors`: what webpki builds paths to.
    trust_anchors: Vec<TrustAnchor<'static>>,
    /// Issuer signatures by the anchors' keys that verified (shared by clones).
    signatures: AnchorSignatures,
}

impl TrustBundle {
    /// Parses a PEM bundle holding one or more `CERTIFICATE` blocks.
    ///
    /// Text outside PEM blocks is ignored. Every block must be a well-formed `CERTIFICATE`
    /// holding an X.509 CA certificate (basicConstraints cA=TRUE, non-empty subject) that
    /// webpki accepts as a trust anchor; errors name the block by its 0-based index.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let mut ders = Vec::new();
        for (index, block) in pem_blocks(pem).into_iter().enumerate() {
            let block = block.map_err(|problem| Error::BundlePem { index, problem })?;
            let parsed = pem::parse(block).map_err(|e| Error::BundlePem {
                index,
                problem: pem_problem(e),
            })?;
            if parsed.tag() != CERTIFICATE_LABEL {
                return Err(Error::BundleNotCertificate {
                    index,
                    label: parsed.tag().to_owned(),
                });
            }
            ders.push(CertificateDer::from(parsed.into_contents()));
        }
        Self::from_der(ders)
    }

    /// Builds a bundle from DER certificates; errors name the certificate by its 0-based
    /// position in `certs`.
    pub fn from_der(certs: Vec<CertificateDer<'static>>) -> Result<Self, Error> {
        if certs.is_empty() {
            return Err(Error::BundleEmpty);
        }
        let mut anchors = Vec::with_capacity(certs.len());
        for (index, der) in certs.into_iter().enumerate() {
            anchors.push(
                Anchor::parse(der)
                    .map_err(|problem| Error::BundleCertificate { index, problem })?,
            );
        }
        Ok(Self::from_anchors(anchors))
    }

    /// The number of anchors.
    pub fn len(&self) -> usize {
        self.inner.anchors.len()
    }

    /// Whether the bundle has no anchor (only possible for results of set operations).
    pub fn is_empty(&self) -> bool {
        self.inner.anchors.is_empty()
    }

    /// The anchors, in bundle order.
    pub fn anchors(&self) -> core::slice::Iter<'_, Anchor> {
        self.inner.anchors.iter()
    }

    /// The anchor at `index`, if there is one.
    pub fn anchor(&self, index: usize) -> Option<&Anchor> {
        self.inner.anchors.get(index)
    }

    /// The anchors as webpki trust anchors, in bundle order (for a rustls verifier).
    pub fn trust_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.inner.trust_anchors
    }

    /// The position of the anchor with this DER, if the bundle has it.
    pub fn position(&self, der: &[u8]) -> Option<usize> {
        self.anchors().position(|a| a.der.as_ref() == der)
    }

    /// Whether the bundle has an anchor with this DER.
    pub fn contains(&self, der: &[u8]) -> bool {
        self.position(der).is_some()
    }

    /// The anchors of `self` that `other` does not have, in `self`'s order; may be empty.
    pub fn difference(&self, other: &Self) -> Self {
        let theirs = other.der_set();
        let (anchors, trust_anchors) = self
            .entries()
            .filter(|(a, _)| !theirs.contains(a.der.as_ref()))
            .map(|(a, ta)| (a.clone(), ta.clone()))
            .unzip();
        Self::from_parts(anchors, trust_anchors)
    }

    /// The anchors of `self`, then those of `other` that `self` does not have.
    pub fn union(&self, other: &Self) -> Self {
        let ours = self.der_set();
        let (anchors, trust_anchors) = self
            .entries()
            .chain(
                other
                    .entries()
                    .filter(|(a, _)| !ours.contains(a.der.as_ref())),
            )
            .map(|(a, ta)| (a.clone(), ta.clone()))
            .unzip();
        Self::from_parts(anchors, trust_anchors)
    }

    /// The bundle as PEM: one `CERTIFICATE` block per anchor, `\n` line endings.
    pub fn to_pem(&self) -> String {
        let blocks: Vec<pem::Pem> = self
            .anchors()
            .map(|a| pem::Pem::new(CERTIFICATE_LABEL, a.der.as_ref()))
            .collect();
        pem::encode_many_config(
            &blocks,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// Builds a bundle from parsed anchors, dropping later duplicates. May be empty.
    fn from_anchors(anchors: Vec<(Anchor, TrustAnchor<'static>)>) -> Self {
        let mut seen = HashSet::with_capacity(anchors.len());
        let mut keep = vec![false; anchors.len()];
        for (i, (a, _)) in anchors.iter().enumerate() {
            keep[i] = seen.insert(a.der.as_ref().to_vec());
        }
        let (anchors, trust_anchors) = anchors
            .into_iter()
            .zip(keep)
            .filter_map(|(entry, keep)| keep.then_some(entry))
            .unzip();
        Self::from_parts(anchors, trust_anchors)
    }

    fn from_parts(anchors: Vec<Anchor>, trust_anchors: Vec<TrustAnchor<'static>>) -> Self {
        let signatures =
            AnchorSignatures::new(anchors.iter().map(|a| a.key_bits.clone()).collect());
        Self {
            inner: Arc::new(Inner {
                anchors,
                trust_anchors,
                signatures,
            }),
        }
    }

    /// What path building verifies signatures with under this bundle.
    pub(crate) fn signatures(&self) -> &AnchorSignatures {
        &self.inner.signatures
    }

    fn entries(&self) -> impl Iterator<Item = (&Anchor, &TrustAnchor<'static>)> {
        self.inner.anchors.iter().zip(&self.inner.trust_anchors)
    }

    fn der_set(&self) -> HashSet<&[u8]> {
        self.anchors().map(|a| a.der.as_ref()).collect()
    }
}

impl PartialEq for TrustBundle {
    fn eq(&self, other: &Self) -> bool {
        // Anchors are unique within a bundle, so equal sizes and inclusion mean equal sets.
        self.len() == other.len() && {
            let theirs = other.der_set();
            self.anchors().all(|a| theirs.contains(a.der.as_ref()))
        }
    }
}

impl Eq for TrustBundle {}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.anchors()).finish()
    }
}

// === impl Anchor ===

/// One trust anchor of a [`TrustBundle`], with what operators need to see about it.
#[derive(Clone, PartialEq, Eq)]
pub struct Anchor {
    der: CertificateDer<'static>,
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key: PublicKeyKind,
    /// The `subjectPublicKey` bits, as webpki hands them to a signature algorithm.
    key_bits: Vec<u8>,
}

impl Anchor {
    /// Parses `der` with x509-parser (for the operator-facing fields) and webpki (for path
    /// building). An anchor must be a CA certificate (basicConstraints cA=TRUE) with a
    /// non-empty subject: webpki alone would take any certificate, leaves and v1 included.
    fn parse(der: CertificateDer<'static>) -> Result<(Self, TrustAnchor<'static>), AnchorProblem> {
        let (subject, not_before, not_after, key, key_bits) = {
            let cert = x509::parse_certificate(&der).map_err(AnchorProblem::Malformed)?;
            // x509-parser's only error here: the extension appears twice.
            let is_ca = cert.basic_constraints().map_err(|_| {
                AnchorProblem::Malformed(MalformedCertificate::DuplicateExtension {
                    name: "basicConstraints",
                })
            })?;
            if !is_ca.is_some_and(|bc| bc.value.ca) {
                return Err(AnchorProblem::NotCa);
            }
            if cert.subject().iter().next().is_none() {
                return Err(AnchorProblem::EmptySubject);
            }
            let validity = cert.validity();
            (
                cert.subject().to_string(),
                validity.not_before.to_datetime(),
                validity.not_after.to_datetime(),
                meshid_policy::x509::public_key_kind(cert.public_key()),
                cert.public_key().subject_public_key.data.to_vec(),
            )
        };
        let trust_anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(AnchorProblem::Webpki)?
            .to_owned();
        let anchor = Self {
            der,
            subject,
            not_before,
            not_after,
            key,
            key_bits,
        };
        Ok((anchor, trust_anchor))
    }

    /// The certificate's DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The subject distinguished name, e.g. `CN=root.linkerd.cluster.local`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// NotBefore.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// NotAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether `now` is within NotBefore..=NotAfter.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The anchor's public key.
    pub fn key(&self) -> &PublicKeyKind {
        &self.key
    }

    /// The SHA-256 fingerprint of the DER, lower-case hex without separators.
    pub fn sha256_fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.der.as_ref());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anchor")
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .field("sha256", &self.sha256_fingerprint())
            .finish()
    }
}

// === PEM blocks ===

/// Splits `input` into PEM blocks (`-----BEGIN` line through `-----END` line), so that errors
/// can name the block; text between blocks is ignored.
fn pem_blocks(input: &[u8]) -> Vec<Result<&[u8], PemProblem>> {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(start) = find(input, pos, PEM_BEGIN) {
        let after = start + PEM_BEGIN.len();
        let next_begin = find(input, after, PEM_BEGIN);
        match find(input, after, PEM_END) {
            Some(end) if next_begin.is_none_or(|next| end < next) => {
                let line_end = input[end..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(input.len(), |i| end + i + 1);
                blocks.push(Ok(&input[start..line_end]));
                pos = line_end;
            }
            _ => {
                blocks.push(Err(PemProblem::Unterminated));
                pos = next_begin.unwrap_or(input.len());
            }
        }
    }
    blocks
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

fn pem_problem(err: pem::PemError) -> PemProblem {
    match err {
        pem::PemError::MismatchedTags(begin, end) => PemProblem::MismatchedLabels { begin, end },
        pem::PemError::MalformedFraming => PemProblem::MalformedFraming,
        pem::PemError::InvalidData(e) => PemProblem::InvalidBase64 {
            detail: e.to_string(),
        },
        other => PemProblem::Other {
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_blocks_and_ignores_text_between() {
        let input = b"comment\n-----BEGIN A-----\nAAAA\n-----END A-----\ntext\n\
                      -----BEGIN B-----\nBBBB\n-----END B-----";
        let blocks = pem_blocks(input);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            Ok(&b"-----BEGIN A-----\nAAAA\n-----END A-----\n"[..])
        );
        assert_eq!(
            blocks[1],
            Ok(&b"-----BEGIN B-----\nBBBB\n-----END B-----"[..])
        );
    }

    #[test]
    fn unterminated_block_is_reported_in_place() {
        let input = b"-----BEGIN A-----\nAAAA\n-----BEGIN B-----\nBBBB\n-----END B-----\n";
        let blocks = pem_blocks(input);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0], Err(PemProblem::Unterminated));
        assert!(blocks[1].is_ok());
        assert!(pem_blocks(b"no pem here").is_empty());
    }
}

//! The CSR and key error types.

use x509_parser::error::X509Error;

/// Why a key or CSR could not be built, loaded, parsed or verified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A CSR could not be built (a name is not ASCII, or encoding failed).
    #[error("cannot build CSR: {0}")]
    CsrBuild(#[source] BuildProblem),
    /// The CSR is not valid DER PKCS#10, or a field the CA reads holds something it cannot
    /// use.
    #[error("malformed certificate signing request: {0}")]
    CsrMalformed(#[source] MalformedCsr),
    /// The CSR's signature does not verify with its own public key: the requester does not
    /// hold the private key, or the CSR was altered.
    #[error(
        "CSR signature does not verify: the requester must sign the CSR with the key being certified"
    )]
    CsrSignatureInvalid,
    /// The CSR is larger than the configured limit.
    #[error("certificate signing request is {size} bytes; the limit is {max} bytes")]
    CsrTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The private key is encrypted.
    #[error("encrypted private keys are not supported; store the key unencrypted with mode 0600")]
    EncryptedKey,
    /// A key's DER encoding is invalid.
    #[error("invalid {format} private key: {problem}")]
    KeyEncoding {
        /// `PKCS#8` or `SEC1`.
        format: &'static str,
        /// What is wrong with it.
        #[source]
        problem: KeyEncodingProblem,
    },
    /// The random source failed while generating a key.
    #[error("key generation failed: the system random source is unavailable")]
    KeyGeneration,
    /// ring refused the key (for example the public key does not match the private key).
    #[error("private key rejected: {reason}")]
    KeyRejected {
        /// ring's reason, e.g. `InconsistentComponents` (a public key that does not match the
        /// private key): text, because ring's error has no typed form of its reasons.
        reason: String,
    },
    /// The input is not PEM, or has no private key block.
    #[error("invalid PEM: {0}")]
    Pem(#[source] KeyPemProblem),
    /// The CSR asks for an extension that would change the leaf profile.
    #[error("CSR refused: {0}")]
    RequestedExtension(RefusedExtension),
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The key is of a type meshid cannot use.
    #[error("unsupported private key type {found}; meshid keys are ECDSA P-256 or P-384")]
    UnsupportedKey {
        /// What was found.
        found: String,
    },
    /// The CSR is signed with an algorithm meshid does not verify.
    #[error("CSR signature algorithm {algorithm} is not supported for a {key} key")]
    UnsupportedSignatureAlgorithm {
        /// The signature algorithm OID.
        algorithm: String,
        /// The key found.
        key: String,
    },
}

/// Why a CSR could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildProblem {
    /// rcgen could not write the CSR.
    #[error("{0}")]
    Encoding(#[source] rcgen::Error),
    /// The ServiceAccount has no identity or SANs in the mesh (a name too long).
    #[error("{0}")]
    Names(#[source] meshid_policy::Error),
    /// A SAN is not ASCII.
    #[error("SAN '{san}' is not ASCII: {error}")]
    NotAscii {
        /// The SAN.
        san: String,
        /// rcgen's error.
        #[source]
        error: rcgen::Error,
    },
}

/// What is wrong with the DER of a private key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyEncodingProblem {
    /// It does not decode.
    #[error("{0}")]
    Der(#[source] der::Error),
    /// A SEC1 key names no curve, and its length implies none.
    #[error("no curve given and a {len}-byte private key")]
    NoCurve {
        /// The private key's length in bytes.
        len: usize,
    },
    /// A PKCS#8 EC key names no curve.
    #[error("EC key without a named curve")]
    NoNamedCurve,
    /// A SEC1 key does not embed its public key.
    #[error(
        "the key does not embed its public key; re-export it with `openssl ec -in key.pem -out key.pem`"
    )]
    NoPublicKey,
    /// A SEC1 key of another version than 1.
    #[error("unsupported version {found}")]
    Version {
        /// The version found.
        found: u8,
    },
}

/// What is wrong with a PEM private key file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyPemProblem {
    /// It holds no private key block.
    #[error("no private key block found")]
    NoKey,
    /// It is not PEM.
    #[error("{detail}")]
    Parse {
        /// The PEM parser's error.
        detail: String,
    },
    /// It holds another block where a private key was expected.
    #[error("unexpected PEM block '{label}' where a private key was expected")]
    UnexpectedBlock {
        /// The block's label.
        label: String,
    },
}

/// What is wrong with a CSR that does not parse, or holds a field the CA cannot read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedCsr {
    /// A subject CommonName is not text.
    #[error("the subject CommonName is not a UTF8String, PrintableString or IA5String")]
    CommonNameNotText,
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// An IP address SAN is neither 4 nor 16 bytes long.
    #[error("an IP address SAN of {len} bytes")]
    IpAddressLength {
        /// Its length.
        len: usize,
    },
    /// A subjectAltName entry is not one of the GeneralName choices.
    #[error("a subjectAltName entry with tag [{tag}] is not a GeneralName")]
    NotAGeneralName {
        /// Its context-specific tag number.
        tag: u32,
    },
    /// The public key or the signature is a BIT STRING that does not hold whole bytes.
    #[error("{field}: not a whole number of bytes")]
    PartialBytes {
        /// `subjectPublicKey` or `signature`.
        field: &'static str,
    },
    /// A requested extension the CA checks does not parse.
    #[error("requested extension {oid} does not parse: {error}")]
    RequestedExtension {
        /// The extension's OID, dotted.
        oid: String,
        /// The parser's error.
        #[source]
        error: X509Error,
    },
    /// A DNS, URI or email SAN is not ASCII.
    #[error("a {kind} SAN is not ASCII")]
    SanNotAscii {
        /// `DNS`, `URI` or `email`.
        kind: &'static str,
    },
    /// The CSR requests a second subjectAltName extension.
    #[error("more than one subjectAltName extension")]
    SecondSubjectAltName,
    /// The CSR is not a PKCS#10 CertificationRequest.
    #[error("not a PKCS#10 CertificationRequest: {0}")]
    Structure(#[source] X509Error),
    /// Bytes follow the CertificationRequest.
    #[error("{count} trailing bytes after the CertificationRequest")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The CertificationRequest announces more content than the input holds.
    #[error(
        "CertificationRequest: truncated DER: {announced} content bytes announced, {present} present"
    )]
    Truncated {
        /// The content length its header announces.
        announced: usize,
        /// The content bytes present.
        present: usize,
    },
    /// The CertificationRequestInfo's version is not v1 (0).
    #[error("unsupported CSR version (only v1 exists)")]
    Version {
        /// The version number found.
        found: u32,
    },
}

// x509-parser's error is `PartialEq` only for want of a derive: none of its values is unequal
// to itself.
impl Eq for MalformedCsr {}

/// A requested extension that would change the leaf profile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedExtension {
    /// basicConstraints CA:TRUE.
    #[error(
        "the CSR asks for a CA certificate (basicConstraints CA:TRUE); meshid issues only leaf certificates"
    )]
    CaCertificate,
    /// keyUsage keyCertSign or cRLSign.
    #[error(
        "the CSR asks for certificate or CRL signing (keyCertSign/cRLSign); meshid issues only leaf certificates"
    )]
    CertificateSigning,
    /// nameConstraints.
    #[error("the CSR asks for name constraints, which only a CA certificate may carry")]
    NameConstraints,
    /// extKeyUsage with a purpose other than serverAuth and clientAuth.
    #[error("the CSR asks for extended key usages other than serverAuth and clientAuth")]
    OtherExtendedKeyUsage,
    /// A critical extension meshid does not know.
    #[error("the CSR requests critical extension {oid} that meshid does not issue")]
    UnknownCritical {
        /// The extension's OID, dotted.
        oid: String,
    },
}
